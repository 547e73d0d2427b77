-- The product catalogue. Prices are integers in the currency's minor unit (fen for CNY), never floats.
CREATE TABLE product (
    id          TEXT    PRIMARY KEY,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    price_fen   BIGINT  NOT NULL CHECK (price_fen >= 0),
    currency    TEXT    NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX product_category ON product (category, active);

-- An order of a customer ('order' is an SQL keyword, hence sales_order). The total is computed by the server from
-- the items and stored; points_earned is what paying it credited to the loyalty ledger (taken back on refund).
CREATE TABLE sales_order (
    id             TEXT    PRIMARY KEY,
    customer_id    TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    status         TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    total_fen      BIGINT  NOT NULL CHECK (total_fen >= 0),
    points_earned  BIGINT  NOT NULL DEFAULT 0,
    created_by     TEXT    REFERENCES app_user (id),
    placed_at      BIGINT  NOT NULL,
    paid_at        BIGINT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX sales_order_customer ON sales_order (customer_id, placed_at, id);

-- The lines of an order, with the unit price at the time of the order (catalogue prices change later).
-- customer_id repeats the order's so that purchase-history queries (recommendations) need no join.
CREATE TABLE order_item (
    order_id        TEXT    NOT NULL REFERENCES sales_order (id) ON DELETE CASCADE,
    line_no         BIGINT  NOT NULL,
    customer_id     TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    product_id      TEXT    NOT NULL REFERENCES product (id),
    quantity        BIGINT  NOT NULL CHECK (quantity > 0),
    unit_price_fen  BIGINT  NOT NULL CHECK (unit_price_fen >= 0),
    line_total_fen  BIGINT  NOT NULL CHECK (line_total_fen >= 0),
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_item_customer ON order_item (customer_id, product_id);
CREATE INDEX order_item_product ON order_item (product_id, customer_id);

-- One loyalty account per customer. balance is what can be redeemed; the CHECK is the last line of defence behind
-- the guarded UPDATE (balance >= points) that every deduction uses. lifetime_points decides the tier.
CREATE TABLE loyalty_account (
    customer_id      TEXT    PRIMARY KEY REFERENCES customer (id) ON DELETE CASCADE,
    balance          BIGINT  NOT NULL DEFAULT 0 CHECK (balance >= 0),
    lifetime_points  BIGINT  NOT NULL DEFAULT 0,
    tier             TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

-- The points ledger: 'earn' (a paid order), 'redeem', 'expire', 'reverse' (a refund takes back unspent points).
-- points is signed. An earn entry is also a lot: remaining is what is left of it after redemptions (oldest expiry
-- first), expiry and reversal, so the sum of remaining over a customer's lots equals the account balance.
CREATE TABLE loyalty_entry (
    id          TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    points      BIGINT  NOT NULL,
    remaining   BIGINT  NOT NULL DEFAULT 0 CHECK (remaining >= 0),
    order_id    TEXT    REFERENCES sales_order (id) ON DELETE SET NULL,
    expires_at  BIGINT,
    reason      TEXT,
    actor_id    TEXT    REFERENCES app_user (id),
    created_at  BIGINT  NOT NULL
);
CREATE INDEX loyalty_entry_customer ON loyalty_entry (customer_id, created_at, id);
CREATE INDEX loyalty_entry_lot ON loyalty_entry (customer_id, remaining, expires_at);

-- Every change of a customer's membership tier, with the lifetime points that caused it.
CREATE TABLE loyalty_tier_change (
    id               TEXT    PRIMARY KEY,
    customer_id      TEXT    NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    from_tier        TEXT,
    to_tier          TEXT    NOT NULL,
    lifetime_points  BIGINT  NOT NULL,
    reason           TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL
);
CREATE INDEX loyalty_tier_change_customer ON loyalty_tier_change (customer_id, created_at, id);
