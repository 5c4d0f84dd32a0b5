-- Password sign-in attempts per client address (an IPv4 address or an IPv6 /64), counted in a
-- fixed window, so one source cannot spray guesses over many accounts.
CREATE TABLE signin_clients (
    client       TEXT    PRIMARY KEY,
    window_start BIGINT  NOT NULL, -- unix milliseconds
    attempts     INTEGER NOT NULL
);
