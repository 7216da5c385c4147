-- An image can be retired like a plan or template: customers are no longer offered it, machines
-- made from it keep running (and reinstall from it).
ALTER TABLE images ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
