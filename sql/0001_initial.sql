-- 0001_initial: the whole metadata store as of the first release.
--
-- One file for SQLite and PostgreSQL. The runner replaces {{ID}} (surrogate key) and
-- {{BLOB}} before running it. Everything else here is written to mean the same on both
-- engines, hence the rules below.
--
--  * Times are UTC integer microseconds since the epoch (BIGINT, names end in _us),
--    so ordering, arithmetic and comparison never depend on an engine's date type or
--    on a session time zone. Calendar days for rollups are TEXT 'YYYY-MM-DD' in the
--    site's own zone, because "a day" is a local notion (DST days have 23 or 25 hours).
--  * No column defaults to "now": the daemon stamps every time itself, from one clock.
--  * JSON lives in TEXT columns named *_json, enumerations in TEXT + CHECK.
--  * Free-text descriptions are NOT NULL DEFAULT '' (always printable). Optional facts
--    (serial number, coordinates ...) are NULL when unknown, which is not the same as empty.
--  * Who did something is stored as the username (TEXT, *_by / *_user / username) where
--    the record must outlive the account, and as a user id only where the row belongs to
--    a live account (sessions, role grants, assignments, time entries).
--  * The text deliberately contains no percent sign: the PostgreSQL path may run it
--    through a driver that treats that character as a parameter marker.


-- ===================================================================== core / auth

-- People who can call the API. Lockout and password-age fields are here, not in the
-- session store, so a policy survives a daemon restart.
CREATE TABLE users (
    id {{ID}},
    username TEXT NOT NULL UNIQUE CHECK (username <> ''),
    display_name TEXT NOT NULL DEFAULT '',
    email TEXT,
    password_hash TEXT NOT NULL,
    mfa_secret TEXT,
    mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until_us BIGINT,
    password_changed_us BIGINT,
    last_login_us BIGINT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    -- MFA switched on without a secret would lock the user out for good.
    CHECK (NOT mfa_enabled OR mfa_secret IS NOT NULL)
);

-- Named permission sets (<area>.<verb> strings in permissions_json). Builtin roles are
-- shipped with the daemon and may not be deleted or renamed through the API.
CREATE TABLE roles (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    description TEXT NOT NULL DEFAULT '',
    permissions_json TEXT NOT NULL DEFAULT '[]',
    builtin BOOLEAN NOT NULL DEFAULT FALSE,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- Role grants. A grant means nothing without both ends, so it goes with either.
CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    granted_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX ix_user_roles_role ON user_roles(role_id);

-- Login sessions. Only a hash of the token is kept, so a copy of the database does not
-- hand out live sessions. The Unix peer (SO_PEERCRED) is recorded for the audit trail.
CREATE TABLE sessions (
    id {{ID}},
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    unix_uid INTEGER,
    unix_user TEXT,
    created_us BIGINT NOT NULL,
    last_seen_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    revoked_us BIGINT,
    CHECK (expires_us > created_us)
);
CREATE INDEX ix_sessions_user ON sessions(user_id);
CREATE INDEX ix_sessions_expires ON sessions(expires_us);

-- Every state-changing call, kept as a hash chain: hash covers this record plus
-- prev_hash, so deleting or editing a row breaks the chain where it happened. The
-- first record chains to a fixed genesis value. Users are named, not referenced, so
-- the trail outlives accounts. UNIQUE (prev_hash) forbids a forked chain.
CREATE TABLE audit_log (
    id {{ID}},
    ts_us BIGINT NOT NULL,
    scada_user TEXT,
    unix_uid INTEGER,
    unix_user TEXT,
    method TEXT NOT NULL,
    target TEXT,
    params_json TEXT NOT NULL DEFAULT '{}',
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error')),
    error_code TEXT,
    prev_hash TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    CHECK (outcome = 'error' OR error_code IS NULL)
);
CREATE INDEX ix_audit_log_ts ON audit_log(ts_us);
CREATE INDEX ix_audit_log_user_ts ON audit_log(scada_user, ts_us);
CREATE INDEX ix_audit_log_method_ts ON audit_log(method, ts_us);


-- ===================================================================== plant

-- Physical sites. The name is the first segment of every tag path under it, hence no
-- slash. timezone (IANA name) is what days, shifts and report schedules are cut in.
CREATE TABLE sites (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> '' AND replace(name, '/', '') = name),
    display_name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT 'UTC',
    latitude DOUBLE PRECISION CHECK (latitude BETWEEN -90 AND 90),
    longitude DOUBLE PRECISION CHECK (longitude BETWEEN -180 AND 180),
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- The asset tree of a site (panels, meters, generators, pumps ...). Work orders, tags
-- and meters hang off it. A site or a parent with equipment under it cannot be deleted:
-- silently orphaning assets would lose maintenance history. kind is an open vocabulary
-- (meter, generator, inverter, pump, plc, breaker, transformer, other ...), so new
-- asset kinds need no migration.
CREATE TABLE equipment (
    id {{ID}},
    site_id BIGINT NOT NULL REFERENCES sites(id) ON DELETE RESTRICT,
    parent_id BIGINT REFERENCES equipment(id) ON DELETE RESTRICT,
    name TEXT NOT NULL CHECK (name <> '' AND replace(name, '/', '') = name),
    kind TEXT NOT NULL DEFAULT 'other' CHECK (kind <> ''),
    description TEXT NOT NULL DEFAULT '',
    manufacturer TEXT,
    model TEXT,
    serial_number TEXT,
    location TEXT,
    commissioned_us BIGINT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    UNIQUE (site_id, name)
);
CREATE INDEX ix_equipment_parent ON equipment(parent_id);
CREATE INDEX ix_equipment_kind ON equipment(kind);

-- Polling rates. Tags share a group so the acquisition layer can batch reads per
-- device and interval instead of scheduling each tag on its own.
CREATE TABLE scan_groups (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    interval_ms INTEGER NOT NULL CHECK (interval_ms > 0),
    description TEXT NOT NULL DEFAULT '',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- Field connections. Columns for each protocol sit side by side (unused ones NULL) so
-- the common ones are queryable. Anything rarer goes in settings_json.
-- address_base says whether configured addresses count from 0 or 1 (vendor manuals
-- differ), byte_order / word_order how multi-register values are laid out.
CREATE TABLE devices (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    protocol TEXT NOT NULL CHECK (protocol IN ('modbus_tcp', 'modbus_rtu', 'opcua', 'simulator')),
    equipment_id BIGINT REFERENCES equipment(id) ON DELETE SET NULL,
    description TEXT NOT NULL DEFAULT '',
    host TEXT,
    port INTEGER CHECK (port BETWEEN 1 AND 65535),
    unit_id INTEGER CHECK (unit_id BETWEEN 0 AND 255),
    serial_port TEXT,
    baudrate INTEGER CHECK (baudrate > 0),
    parity TEXT CHECK (parity IN ('N', 'E', 'O')),
    stopbits INTEGER CHECK (stopbits IN (1, 2)),
    endpoint_url TEXT,
    address_base INTEGER NOT NULL DEFAULT 0 CHECK (address_base IN (0, 1)),
    byte_order TEXT NOT NULL DEFAULT 'big' CHECK (byte_order IN ('big', 'little')),
    word_order TEXT NOT NULL DEFAULT 'big' CHECK (word_order IN ('big', 'little')),
    timeout_ms INTEGER NOT NULL DEFAULT 1000 CHECK (timeout_ms > 0),
    retries INTEGER NOT NULL DEFAULT 3 CHECK (retries >= 0),
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    settings_json TEXT NOT NULL DEFAULT '{}',
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    -- A device its driver cannot even try to reach is a config error, caught here.
    CHECK (protocol <> 'modbus_tcp' OR host IS NOT NULL),
    CHECK (protocol <> 'modbus_rtu' OR serial_port IS NOT NULL),
    CHECK (protocol <> 'opcua' OR endpoint_url IS NOT NULL)
);
CREATE INDEX ix_devices_equipment ON devices(equipment_id);

-- Tag definitions (the live values are in memory, history in tag_history).
-- Scaling is linear raw -> engineering, all four bounds or none. function_code is the
-- Modbus read function (1 coils, 2 discrete inputs, 3 holding, 4 input registers),
-- the matching write function follows from it. Deleting a device leaves its tags
-- (they go BAD with a config reason) so their history and alarm rules survive.
-- A scan group in use cannot be deleted, since its tags would stop being polled.
CREATE TABLE tags (
    id {{ID}},
    path TEXT NOT NULL UNIQUE CHECK (path <> ''),
    description TEXT NOT NULL DEFAULT '',
    data_type TEXT NOT NULL CHECK (data_type IN ('bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float32', 'float64', 'string')),
    source TEXT NOT NULL DEFAULT 'device' CHECK (source IN ('device', 'computed', 'memory')),
    device_id BIGINT REFERENCES devices(id) ON DELETE SET NULL,
    address TEXT,
    function_code INTEGER CHECK (function_code IN (1, 2, 3, 4)),
    scan_group_id BIGINT REFERENCES scan_groups(id) ON DELETE RESTRICT,
    expression TEXT,
    units TEXT NOT NULL DEFAULT '',
    raw_low DOUBLE PRECISION,
    raw_high DOUBLE PRECISION,
    eng_low DOUBLE PRECISION,
    eng_high DOUBLE PRECISION,
    deadband DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (deadband >= 0),
    deadband_mode TEXT NOT NULL DEFAULT 'absolute' CHECK (deadband_mode IN ('absolute', 'percent')),
    writable BOOLEAN NOT NULL DEFAULT FALSE,
    equipment_id BIGINT REFERENCES equipment(id) ON DELETE SET NULL,
    initial_value TEXT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    CHECK (
        (raw_low IS NULL AND raw_high IS NULL AND eng_low IS NULL AND eng_high IS NULL)
        OR (raw_low IS NOT NULL AND raw_high IS NOT NULL AND eng_low IS NOT NULL
            AND eng_high IS NOT NULL AND raw_high <> raw_low)
    ),
    CHECK (source <> 'computed' OR expression IS NOT NULL),
    CHECK (source = 'device' OR device_id IS NULL)
);
CREATE INDEX ix_tags_device ON tags(device_id);
CREATE INDEX ix_tags_scan_group ON tags(scan_group_id);
CREATE INDEX ix_tags_equipment ON tags(equipment_id);

-- The embedded historian's raw samples. The primary key is also the trend index
-- (one tag, a time range). There is deliberately no index on ts_us alone: this is the
-- hottest write path, and retention deletes per tag through the key instead.
-- value holds numbers and booleans (0/1), value_text holds string tags.
CREATE TABLE tag_history (
    tag_id BIGINT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    ts_us BIGINT NOT NULL,
    value DOUBLE PRECISION,
    value_text TEXT,
    quality TEXT NOT NULL CHECK (quality IN ('GOOD', 'UNCERTAIN', 'BAD')),
    quality_reason TEXT,
    PRIMARY KEY (tag_id, ts_us),
    CHECK (value IS NULL OR value_text IS NULL)
);


-- ===================================================================== alarms

-- ISA-18.2 alarm definitions. limit_value is the trip point (for deviation the allowed
-- difference from setpoint_tag_id, for rate_of_change units per second, for discrete
-- the alarm value). One rule per tag and kind gives every alarm a name people can type
-- (path + kind). suppression_expression, when true, suppresses the alarm by design
-- (e.g. low pressure while the pump is stopped).
CREATE TABLE alarm_rules (
    id {{ID}},
    tag_id BIGINT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('hihi', 'hi', 'lo', 'lolo', 'discrete', 'rate_of_change', 'deviation', 'bad_quality')),
    limit_value DOUBLE PRECISION,
    setpoint_tag_id BIGINT REFERENCES tags(id) ON DELETE SET NULL,
    deadband DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (deadband >= 0),
    on_delay_ms INTEGER NOT NULL DEFAULT 0 CHECK (on_delay_ms >= 0),
    off_delay_ms INTEGER NOT NULL DEFAULT 0 CHECK (off_delay_ms >= 0),
    priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    latching BOOLEAN NOT NULL DEFAULT FALSE,
    message_template TEXT NOT NULL DEFAULT '',
    area TEXT NOT NULL DEFAULT '',
    open_work_order BOOLEAN NOT NULL DEFAULT FALSE,
    suppression_expression TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    UNIQUE (tag_id, kind),
    CHECK (kind IN ('bad_quality', 'discrete') OR limit_value IS NOT NULL)
);
CREATE INDEX ix_alarm_rules_setpoint_tag ON alarm_rules(setpoint_tag_id);
CREATE INDEX ix_alarm_rules_area ON alarm_rules(area);

-- Current state of each alarm, one row per rule, so a restarted daemon resumes with
-- the same unacknowledged and shelved alarms instead of replaying the journal.
CREATE TABLE alarms (
    id {{ID}},
    rule_id BIGINT NOT NULL UNIQUE REFERENCES alarm_rules(id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'normal' CHECK (state IN ('normal', 'unack_active', 'ack_active', 'rtn_unack', 'latched')),
    shelved_until_us BIGINT,
    shelved_by TEXT,
    shelve_reason TEXT,
    suppressed BOOLEAN NOT NULL DEFAULT FALSE,
    out_of_service BOOLEAN NOT NULL DEFAULT FALSE,
    oos_reason TEXT,
    active_since_us BIGINT,
    last_change_us BIGINT NOT NULL,
    value DOUBLE PRECISION,
    acked_by TEXT,
    acked_us BIGINT,
    -- Shelving is time-limited and attributable (ISA-18.2), never anonymous or open-ended.
    CHECK (shelved_until_us IS NULL OR shelved_by IS NOT NULL)
);
CREATE INDEX ix_alarms_state ON alarms(state);
CREATE INDEX ix_alarms_shelved_until ON alarms(shelved_until_us);

-- Append-only alarm journal (the sequence-of-events record). Tag path, kind, priority
-- and area are copied in so history reads the same after the rule or tag is gone.
CREATE TABLE alarm_events (
    id {{ID}},
    ts_us BIGINT NOT NULL,
    rule_id BIGINT REFERENCES alarm_rules(id) ON DELETE SET NULL,
    tag_path TEXT NOT NULL,
    kind TEXT,
    event TEXT NOT NULL CHECK (event IN ('activated', 'acknowledged', 'cleared', 'returned', 'shelved', 'unshelved', 'suppressed', 'unsuppressed', 'out_of_service', 'in_service', 'comment', 'notified', 'notify_failed')),
    priority TEXT CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    area TEXT,
    value DOUBLE PRECISION,
    message TEXT NOT NULL DEFAULT '',
    username TEXT,
    comment TEXT
);
CREATE INDEX ix_alarm_events_ts ON alarm_events(ts_us);
CREATE INDEX ix_alarm_events_rule_ts ON alarm_events(rule_id, ts_us);
CREATE INDEX ix_alarm_events_tag_path_ts ON alarm_events(tag_path, ts_us);
CREATE INDEX ix_alarm_events_area_ts ON alarm_events(area, ts_us);


-- ===================================================================== energy

-- Register maps for meter models, imported from TOML. The original text is kept so an
-- export gives back what the user wrote, points_json is the parsed form the daemon uses.
CREATE TABLE meter_templates (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    manufacturer TEXT,
    model TEXT,
    source_toml TEXT NOT NULL,
    points_json TEXT NOT NULL DEFAULT '[]',
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- The meter hierarchy (grid -> main -> feeders -> loads) that loss analysis walks.
-- A meter with children, or a template in use, cannot be deleted: either would
-- silently change energy balances or stop a meter being read.
-- When ratio_applied_in_meter is false the daemon multiplies by CT and PT ratios itself.
CREATE TABLE energy_meters (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    site_id BIGINT NOT NULL REFERENCES sites(id) ON DELETE RESTRICT,
    parent_id BIGINT REFERENCES energy_meters(id) ON DELETE RESTRICT,
    equipment_id BIGINT REFERENCES equipment(id) ON DELETE SET NULL,
    device_id BIGINT REFERENCES devices(id) ON DELETE SET NULL,
    template_id BIGINT REFERENCES meter_templates(id) ON DELETE RESTRICT,
    meter_type TEXT NOT NULL CHECK (meter_type IN ('grid', 'main', 'feeder', 'load', 'generator', 'solar', 'virtual')),
    description TEXT NOT NULL DEFAULT '',
    ct_primary DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (ct_primary > 0),
    ct_secondary DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (ct_secondary > 0),
    pt_primary DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (pt_primary > 0),
    pt_secondary DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (pt_secondary > 0),
    ratio_applied_in_meter BOOLEAN NOT NULL DEFAULT FALSE,
    nominal_voltage DOUBLE PRECISION CHECK (nominal_voltage > 0),
    tariff_zone TEXT,
    interval_s INTEGER NOT NULL DEFAULT 900 CHECK (interval_s IN (60, 300, 600, 900, 1800, 3600)),
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX ix_energy_meters_site ON energy_meters(site_id);
CREATE INDEX ix_energy_meters_parent ON energy_meters(parent_id);
CREATE INDEX ix_energy_meters_equipment ON energy_meters(equipment_id);
CREATE INDEX ix_energy_meters_device ON energy_meters(device_id);
CREATE INDEX ix_energy_meters_template ON energy_meters(template_id);

-- Interval energy per meter, the base every energy figure is computed from. One row per
-- meter and interval, so a re-read after a comms gap replaces rather than double counts.
-- estimated marks intervals filled in rather than measured.
CREATE TABLE meter_readings (
    id {{ID}},
    meter_id BIGINT NOT NULL REFERENCES energy_meters(id) ON DELETE CASCADE,
    interval_start_us BIGINT NOT NULL,
    interval_s INTEGER NOT NULL CHECK (interval_s > 0),
    import_kwh DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (import_kwh >= 0),
    export_kwh DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (export_kwh >= 0),
    net_kwh DOUBLE PRECISION NOT NULL DEFAULT 0,
    avg_kw DOUBLE PRECISION,
    max_kw DOUBLE PRECISION,
    kvarh DOUBLE PRECISION,
    pf DOUBLE PRECISION CHECK (pf BETWEEN -1 AND 1),
    estimated BOOLEAN NOT NULL DEFAULT FALSE,
    quality TEXT NOT NULL DEFAULT 'GOOD' CHECK (quality IN ('GOOD', 'UNCERTAIN', 'BAD')),
    quality_reason TEXT,
    UNIQUE (meter_id, interval_start_us)
);
CREATE INDEX ix_meter_readings_interval_start ON meter_readings(interval_start_us);

-- Daily rollup per meter in the site's local day, so month and year views never scan
-- intervals. intervals counts the readings it was built from (fewer than a full day
-- means the day is partial and the figures are a lower bound).
CREATE TABLE energy_consumption (
    id {{ID}},
    meter_id BIGINT NOT NULL REFERENCES energy_meters(id) ON DELETE CASCADE,
    day TEXT NOT NULL CHECK (day LIKE '____-__-__'),
    import_kwh DOUBLE PRECISION NOT NULL DEFAULT 0,
    export_kwh DOUBLE PRECISION NOT NULL DEFAULT 0,
    net_kwh DOUBLE PRECISION NOT NULL DEFAULT 0,
    peak_kw DOUBLE PRECISION,
    peak_us BIGINT,
    cost DOUBLE PRECISION,
    co2_kg DOUBLE PRECISION,
    intervals INTEGER NOT NULL DEFAULT 0 CHECK (intervals >= 0),
    updated_us BIGINT NOT NULL,
    UNIQUE (meter_id, day)
);
CREATE INDEX ix_energy_consumption_day ON energy_consumption(day);

-- Consumption budgets per meter and period, compared against energy_consumption.
-- period_start_us is the local period start (site zone) expressed in UTC.
CREATE TABLE energy_targets (
    id {{ID}},
    meter_id BIGINT NOT NULL REFERENCES energy_meters(id) ON DELETE CASCADE,
    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'year')),
    period_start_us BIGINT NOT NULL,
    target_kwh DOUBLE PRECISION NOT NULL CHECK (target_kwh >= 0),
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    UNIQUE (meter_id, period, period_start_us)
);

-- A day's demand curve per meter in one row (96 values at 15 minutes), because it is
-- always read whole, for charts and day-type comparisons.
CREATE TABLE load_profiles (
    id {{ID}},
    meter_id BIGINT NOT NULL REFERENCES energy_meters(id) ON DELETE CASCADE,
    day TEXT NOT NULL CHECK (day LIKE '____-__-__'),
    interval_s INTEGER NOT NULL DEFAULT 900 CHECK (interval_s > 0),
    demand_kw_json TEXT NOT NULL,
    peak_kw DOUBLE PRECISION,
    peak_us BIGINT,
    updated_us BIGINT NOT NULL,
    UNIQUE (meter_id, day)
);

-- Parent meter versus the sum of its children per interval: losses, theft, and CTs
-- wired or rated wrong show up here. loss_pct is NULL when the parent read zero.
-- status 'incomplete' means a child reading was missing, so no verdict was possible.
CREATE TABLE power_loss_analysis (
    id {{ID}},
    parent_meter_id BIGINT NOT NULL REFERENCES energy_meters(id) ON DELETE CASCADE,
    interval_start_us BIGINT NOT NULL,
    interval_s INTEGER NOT NULL CHECK (interval_s > 0),
    parent_kwh DOUBLE PRECISION,
    children_kwh DOUBLE PRECISION,
    loss_kwh DOUBLE PRECISION,
    loss_pct DOUBLE PRECISION,
    status TEXT NOT NULL CHECK (status IN ('ok', 'warning', 'alarm', 'suspect_ct', 'incomplete')),
    note TEXT,
    computed_us BIGINT NOT NULL,
    UNIQUE (parent_meter_id, interval_s, interval_start_us)
);
CREATE INDEX ix_power_loss_analysis_status ON power_loss_analysis(status);

-- Standby diesel sets. Fuel use in L/h is f0 * rated_kw + f1 * load_kw (the usual
-- linear generator fuel curve), which with co2_kg_per_l gives fuel and CO2 per run.
-- run_hours and starts are counters the daemon advances, seeded from the set's panel.
CREATE TABLE diesel_generators (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    meter_id BIGINT REFERENCES energy_meters(id) ON DELETE SET NULL,
    equipment_id BIGINT REFERENCES equipment(id) ON DELETE SET NULL,
    rated_kva DOUBLE PRECISION CHECK (rated_kva > 0),
    rated_kw DOUBLE PRECISION CHECK (rated_kw > 0),
    tank_capacity_l DOUBLE PRECISION CHECK (tank_capacity_l > 0),
    fuel_curve_f0 DOUBLE PRECISION,
    fuel_curve_f1 DOUBLE PRECISION,
    co2_kg_per_l DOUBLE PRECISION NOT NULL DEFAULT 2.68 CHECK (co2_kg_per_l >= 0),
    run_hours DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (run_hours >= 0),
    starts INTEGER NOT NULL DEFAULT 0 CHECK (starts >= 0),
    fuel_level_tag_id BIGINT REFERENCES tags(id) ON DELETE SET NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX ix_diesel_generators_meter ON diesel_generators(meter_id);
CREATE INDEX ix_diesel_generators_equipment ON diesel_generators(equipment_id);
CREATE INDEX ix_diesel_generators_fuel_level_tag ON diesel_generators(fuel_level_tag_id);

-- On-site generation. The grid emission factor (kg CO2 per kWh the grid would have
-- supplied) turns generated kWh into avoided carbon.
CREATE TABLE renewable_sources (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    meter_id BIGINT REFERENCES energy_meters(id) ON DELETE SET NULL,
    kind TEXT NOT NULL CHECK (kind IN ('solar', 'wind', 'hydro', 'other')),
    capacity_kwp DOUBLE PRECISION CHECK (capacity_kwp > 0),
    grid_emission_factor_kg_per_kwh DOUBLE PRECISION CHECK (grid_emission_factor_kg_per_kwh >= 0),
    commissioned_us BIGINT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX ix_renewable_sources_meter ON renewable_sources(meter_id);

-- Meter availability transitions (one row per change, not per poll), so data gaps
-- in readings can be explained and availability reported.
CREATE TABLE meter_status_history (
    id {{ID}},
    meter_id BIGINT NOT NULL REFERENCES energy_meters(id) ON DELETE CASCADE,
    ts_us BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('online', 'offline', 'degraded', 'maintenance')),
    reason TEXT,
    UNIQUE (meter_id, ts_us)
);


-- ===================================================================== work orders

-- Maintenance jobs: New -> Assigned -> In progress -> (On hold) -> Completed -> Closed,
-- or Cancelled. number is the human reference printed on paper and quoted on the phone.
-- created_by is a username, or 'system' when a critical alarm opened the order.
-- The electronic signature (who, when, hash over the order as signed) is all or nothing.
CREATE TABLE work_orders (
    id {{ID}},
    number TEXT NOT NULL UNIQUE CHECK (number <> ''),
    title TEXT NOT NULL CHECK (title <> ''),
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'assigned', 'in_progress', 'on_hold', 'completed', 'closed', 'cancelled')),
    priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    equipment_id BIGINT REFERENCES equipment(id) ON DELETE SET NULL,
    alarm_event_id BIGINT REFERENCES alarm_events(id) ON DELETE SET NULL,
    assigned_to BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_by TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    due_us BIGINT,
    started_us BIGINT,
    completed_us BIGINT,
    closed_us BIGINT,
    cancelled_us BIGINT,
    signature_user TEXT,
    signature_us BIGINT,
    signature_hash TEXT,
    CHECK (
        (signature_user IS NULL AND signature_us IS NULL AND signature_hash IS NULL)
        OR (signature_user IS NOT NULL AND signature_us IS NOT NULL AND signature_hash IS NOT NULL)
    )
);
CREATE INDEX ix_work_orders_status ON work_orders(status);
CREATE INDEX ix_work_orders_equipment ON work_orders(equipment_id);
CREATE INDEX ix_work_orders_alarm_event ON work_orders(alarm_event_id);
CREATE INDEX ix_work_orders_assigned_to ON work_orders(assigned_to);
CREATE INDEX ix_work_orders_created ON work_orders(created_us);

-- Checklist steps of a work order, in order (seq).
CREATE TABLE work_order_tasks (
    id {{ID}},
    work_order_id BIGINT NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    description TEXT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    done_by TEXT,
    done_us BIGINT,
    UNIQUE (work_order_id, seq)
);

-- Parts and consumables used, for job costing. unit_cost is NULL when not known.
CREATE TABLE work_order_materials (
    id {{ID}},
    work_order_id BIGINT NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    part_number TEXT,
    description TEXT NOT NULL DEFAULT '',
    quantity DOUBLE PRECISION NOT NULL CHECK (quantity > 0),
    unit TEXT NOT NULL DEFAULT 'ea',
    unit_cost DOUBLE PRECISION CHECK (unit_cost >= 0)
);
CREATE INDEX ix_work_order_materials_work_order ON work_order_materials(work_order_id);

-- Labour booked against a work order. ended_us is NULL while the clock runs. A user
-- with booked time cannot be deleted (disable the account instead), labour records
-- must keep their person.
CREATE TABLE work_order_time_entries (
    id {{ID}},
    work_order_id BIGINT NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    started_us BIGINT NOT NULL,
    ended_us BIGINT,
    note TEXT NOT NULL DEFAULT '',
    CHECK (ended_us IS NULL OR ended_us >= started_us)
);
CREATE INDEX ix_work_order_time_entries_work_order ON work_order_time_entries(work_order_id);
CREATE INDEX ix_work_order_time_entries_user ON work_order_time_entries(user_id);


-- ===================================================================== reports

-- Reports the scheduler runs. cron is read in timezone (not UTC) so a 06:00 shift
-- report stays at 06:00 across DST. next_run_us is precomputed so the scheduler only
-- asks "what is due".
CREATE TABLE scheduled_reports (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    report_kind TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    format TEXT NOT NULL DEFAULT 'pdf' CHECK (format IN ('pdf', 'xlsx', 'both')),
    recipients_json TEXT NOT NULL DEFAULT '[]',
    params_json TEXT NOT NULL DEFAULT '{}',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    last_run_us BIGINT,
    next_run_us BIGINT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX ix_scheduled_reports_next_run ON scheduled_reports(next_run_us);

-- Every report run, scheduled or on demand (scheduled_report_id NULL, requested_by
-- set), kept after its schedule is deleted so generated files stay traceable.
CREATE TABLE report_history (
    id {{ID}},
    scheduled_report_id BIGINT REFERENCES scheduled_reports(id) ON DELETE SET NULL,
    report_kind TEXT NOT NULL,
    requested_by TEXT,
    started_us BIGINT NOT NULL,
    finished_us BIGINT,
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    file_path TEXT,
    error TEXT,
    emailed_to_json TEXT NOT NULL DEFAULT '[]',
    CHECK (finished_us IS NULL OR finished_us >= started_us)
);
CREATE INDEX ix_report_history_schedule_started ON report_history(scheduled_report_id, started_us);
CREATE INDEX ix_report_history_started ON report_history(started_us);
CREATE INDEX ix_report_history_status ON report_history(status);
