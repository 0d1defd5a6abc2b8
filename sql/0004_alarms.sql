-- Alarms: what the engine needs beyond 0001's tables.
-- discrete_op: a discrete alarm is abnormal while the value equals ('eq') or differs
-- from ('ne') limit_value. alarm_events.state: the alarm's state after the event, so
-- the journal alone shows what an operator saw at any moment.
ALTER TABLE alarm_rules ADD COLUMN discrete_op TEXT NOT NULL DEFAULT 'eq' CHECK (discrete_op IN ('eq', 'ne'));
ALTER TABLE alarm_events ADD COLUMN state TEXT CHECK (state IS NULL OR state IN ('normal', 'unack_active', 'ack_active', 'rtn_unack', 'latched'));
CREATE INDEX ix_alarm_events_event_ts ON alarm_events(event, ts_us);
