-- The record database as schema version 1 made it (cicbox.db before the live_call and
-- agent_session tables): the migration test opens a database made from this.

CREATE TABLE cdr (
	id INTEGER NOT NULL, 
	call_id VARCHAR(64) NOT NULL, 
	config_version INTEGER NOT NULL, 
	trunk VARCHAR(64), 
	ani VARCHAR(64), 
	dnis VARCHAR(64), 
	queue VARCHAR(64), 
	agent VARCHAR(64), 
	disposition VARCHAR(16) NOT NULL, 
	calendar_start VARCHAR(40) NOT NULL, 
	start_ms BIGINT NOT NULL, 
	queue_entry_ms BIGINT, 
	answer_ms BIGINT, 
	end_ms BIGINT NOT NULL, 
	wait_ms BIGINT, 
	talk_ms BIGINT, 
	PRIMARY KEY (id), 
	UNIQUE (call_id)
);
CREATE INDEX cdr_calendar_start ON cdr (calendar_start);
CREATE INDEX cdr_queue ON cdr (queue);
CREATE TABLE queue_event (
	id INTEGER NOT NULL, 
	tick_ms BIGINT NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	queue VARCHAR(64), 
	agent VARCHAR(64), 
	call_id VARCHAR(64), 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX queue_event_tick ON queue_event (tick_ms);
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	PRIMARY KEY (version)
);
CREATE TABLE spool_mark (
	token VARCHAR(32) NOT NULL, 
	records BIGINT NOT NULL, 
	PRIMARY KEY (token)
);
INSERT INTO schema_version (version) VALUES (1);
