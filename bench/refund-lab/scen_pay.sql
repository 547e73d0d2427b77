\set case A
\ir vars.sql
\ir pay_body.sql
