\set case A
\ir vars.sql
\ir refund_body.sql
