-- Care reminders (客户关怀): the month and day of a customer's birthday ('MM-DD'), derived in the server when the
-- customer is written, from the birth date or from the one the resident ID number encodes. It sits beside the
-- ciphertexts so that the reminder listing selects birthdays in a window without decrypting anything; the year
-- stays sealed, so the column reveals neither the ID number nor the full birth date. Rows written before this
-- migration are filled by the application's backfill (`Veil::backfill_birthdays`, an audited system use of the
-- birth date, run by `veil serve` at start): SQL cannot derive it, the birth date being ciphertext.
ALTER TABLE customer ADD COLUMN birth_md TEXT;

CREATE INDEX customer_birth_md ON customer (birth_md);
