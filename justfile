# opendew tasks. Everything here is plain cargo underneath; `just` is optional.

# Run the whole stack on SQLite under ./.opendew (the README's run command).
dev:
    cargo run -p opendew -- dev

# Format check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The README's test command (Postgres-backed tests skip without OPENDEW_TEST_POSTGRES_URL).
test:
    cargo test --workspace

# What CI runs: lint and tests, with a fresh Postgres database.
verify:
    bash .ci/run

# Format the code.
fmt:
    cargo fmt --all
