\set case B
\ir vars.sql
\ir refund_body.sql
