-- When a job's last attempt started, for the operators' tasks view (`infra::queue::tasks`): with
-- `updated_at` of a finished job it gives how long the attempt took.
ALTER TABLE jobs ADD COLUMN started_at BIGINT;
