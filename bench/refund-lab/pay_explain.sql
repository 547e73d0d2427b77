-- One paid order (pay_body.sql) of case :'case' with auto_explain on every statement, nested ones included; rolled
-- back. Add -v fix=1 to run it with the 0032 function. Run: psql -h 127.0.0.1 -U postgres -d refund_lab -v case=A -f pay_explain.sql
\ir vars.sql
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET client_min_messages = log;
\timing on
BEGIN;
\if :{?fix}
\ir 0032_customer_product_delete_pairs.sql
\endif
\ir pay_body.sql
ROLLBACK;
