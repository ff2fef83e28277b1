-- Delivery latency in microseconds: a local endpoint answers well within a millisecond, and
-- whole milliseconds showed "in 0 ms" everywhere. latency_ms stays filled for older readers.
ALTER TABLE delivery_attempts ADD COLUMN latency_us INTEGER;
