-- Does a large delete earlier in the same session leave the 0032 function with a cached plan that is bad for a
-- later small refund? (plpgsql caches a generic plan per statement; `removed`'s size is known only at planning.)
-- Commits the 0032 file given as -v fixfile=... for the session and restores the 0030 function at the end.
\set ON_ERROR_STOP 1
\set case A
\ir vars.sql
\ir :fixfile
BEGIN;
\ir scen_bulk.sql
ROLLBACK;
BEGIN;
\ir refund_body.sql
ROLLBACK;
BEGIN;
\ir refund_body.sql
ROLLBACK;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_nested_statements = on;
SET client_min_messages = log;
BEGIN;
\ir refund_body.sql
ROLLBACK;
\ir old_function.sql
