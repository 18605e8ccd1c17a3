# The README's two commands: `make run` and `make test`.
.PHONY: run test demo sandbox build lint sam-build

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

run:
	@scripts/ensure-tools.sh
	@echo "==> building the local stack (the first build takes a few minutes)"
	cargo build -p ce-local --bins
	exec $(TARGET_DIR)/debug/ce-local

demo:
	@scripts/ensure-tools.sh
	@echo "==> building the local stack and the demo"
	cargo build -p ce-local -p ce-tests --bins
	$(TARGET_DIR)/debug/ce-demo

# The stack, a sandbox WooCommerce store and a callback receiver, for trying
# the console by hand (README, Console).
sandbox:
	@scripts/ensure-tools.sh
	@echo "==> building the local stack and the sandbox"
	cargo build -p ce-local -p ce-tests --bins
	$(TARGET_DIR)/debug/ce-sandbox

test:
	@scripts/ensure-tools.sh
	@scripts/ensure-browser.sh
	scripts/with-moto.sh scripts/test-all.sh

build:
	cargo build --workspace

sam-build:
	scripts/sam-build.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cfn-lint template.yaml
