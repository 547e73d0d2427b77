-- Survey links sent to customers by e-mail or SMS (the message module), and reminders.
--
-- The token of the link shown when a survey is created is known only by its hash (survey.token_hash). When the
-- server sends a survey, it mints a new random token for that message and stores only its hash here, so every
-- link a customer received works (the first e-mail still works after a reminder) until the survey is answered or
-- expires; the same send replaces survey.token_hash by the hash of a token nobody holds, so the link staff saw at
-- creation stops working once the survey has been sent. sent_count and last_sent_at say how often and when.
CREATE TABLE survey_link (
    token_hash   BLOB    NOT NULL PRIMARY KEY,
    survey_id    TEXT    NOT NULL REFERENCES survey (id) ON DELETE CASCADE,
    message_id   TEXT    REFERENCES customer_message (id) ON DELETE SET NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX survey_link_survey ON survey_link (survey_id);

ALTER TABLE survey ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE survey ADD COLUMN last_sent_at BIGINT;
CREATE INDEX survey_campaign ON survey (campaign_id);
