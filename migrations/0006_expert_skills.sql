-- The product lines an expert takes calls for. An expert with no rows takes every
-- line (a small team does not have to configure anything).
CREATE TABLE expert_skills (
    user_id TEXT NOT NULL REFERENCES users (id),
    product_line TEXT NOT NULL,
    PRIMARY KEY (user_id, product_line)
);
