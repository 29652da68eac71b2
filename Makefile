# The project's commands. `make demo` and `make test` install what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1

.PHONY: mutants-continue install dataset plan runs demo test lint typecheck unit scan synth cdk-synth bootstrap deploy bench bench-scale mutants lock clean

# constraints.txt pins every transitive dependency too (botocore, jsii, ...) at the versions CI ran.
$(STAMP): requirements.txt requirements-dev.txt requirements-tools.txt requirements-local.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-local.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)  ## the virtual environment with every dependency

demo: $(STAMP)  ## the main job: the whole pipeline in local mode on the sample dataset
	$(BIN)/python -m local.run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy lambdas stacks local tools app.py
	$(BIN)/mypy --strict lambdas stacks  # the deployed code and the infrastructure: strict

unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# checkov pins its own boto3/botocore, so it lives in a virtual environment of its own.
SCAN_VENV := .venv-scan
$(SCAN_VENV)/.installed: requirements-scan.txt constraints-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt -c constraints-scan.txt
	touch $@

scan: $(STAMP) $(SCAN_VENV)/.installed  ## checkov on the synthesized templates, findings justified in security/checkov.yaml
	rm -rf cdk.out && $(BIN)/python -m tools.synth --env prod && $(BIN)/python -m tools.synth --env dev
	BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false $(SCAN_VENV)/bin/checkov --config-file security/checkov.yaml -d cdk.out

test: lint typecheck unit scan  ## the quality gate CI runs

synth: $(STAMP)  ## cdk synth without the CDK CLI (ENV=prod for prod)
	$(BIN)/python -m tools.synth --env $(or $(ENV),dev)

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Deploying needs the CDK app's runtime and the operator tools only (requirements-tools.txt):
# no torch, no optuna, no local mode.
DEPLOY_VENV := .venv-deploy
$(DEPLOY_VENV)/.installed: requirements.txt requirements-tools.txt constraints.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt -c constraints.txt
	touch $@

plan: $(DEPLOY_VENV)/.installed  ## what a manifest would do, touching nothing: make plan ARGS="prepared/manifest.json --env dev"
	$(DEPLOY_VENV)/bin/python -m tools.plan $(ARGS)

runs: $(DEPLOY_VENV)/.installed  ## runs holding and waiting for slots, and the month's spend, from the deployed table: make runs ARGS="--env dev"
	$(DEPLOY_VENV)/bin/python -m tools.runs $(ARGS)

dataset: $(DEPLOY_VENV)/.installed  ## the dataset tool: make dataset ARGS="prepare images/ prepared/" (or upload ...)
	$(DEPLOY_VENV)/bin/python -m tools.dataset $(ARGS)

bootstrap: $(DEPLOY_VENV)/.installed node_modules/.bin/cdk  ## cdk bootstrap, once per account and region, with the deploy environment
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" node_modules/.bin/cdk bootstrap --no-notices -c env=$(or $(ENV),dev)

deploy: $(DEPLOY_VENV)/.installed node_modules/.bin/cdk  ## cdk deploy --all to the account in your AWS credentials
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" node_modules/.bin/cdk deploy --all --no-notices -c env=$(or $(ENV),dev)

cdk-synth: $(DEPLOY_VENV)/.installed node_modules/.bin/cdk  ## the CDK CLI's synth, with the deploy environment
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" node_modules/.bin/cdk synth --all --quiet --no-notices -c env=$(or $(ENV),dev)

bench: $(STAMP)  ## search-efficiency benchmark (not part of the tests)
	$(BIN)/python -m bench.run $(ARGS)

bench-scale: $(STAMP)  ## validation and ChooseBest at real sizes against a latency-faithful S3/SageMaker stand-in
	$(BIN)/python -m bench.scale $(ARGS)

# Mutation testing of the deployed code (lambdas/pipeline, lambdas/handlers); minutes, not part of `make test`.
mutants: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-mutants.txt
	rm -rf .mutation && mkdir .mutation
	cp -r lambdas tests local tools stacks bench schema security docs README.md app.py cdk.json requirements*.txt constraints.txt .mutation/
	cp -r lambdas/pipeline lambdas/handlers .mutation/
	sed 's/^pythonpath = .*/pythonpath = ["."]/' pyproject.toml > .mutation/pyproject.toml
	cd .mutation && ../$(BIN)/mutmut run $(ARGS) > mutmut-run.log 2>&1 || true
	cd .mutation && ../$(BIN)/python ../tests/mutation_report.py > ../tests/mutation/results.md
	cat tests/mutation/results.md

# Continue the last `make mutants` on today's code: mutmut keeps each killed mutant whose function
# did not change; survivors, mutants no test covered and changed functions run again. REOPEN=no keeps
# the survivors' verdicts (the tests did not change since); ARGS='pipeline.dataset.lst*' runs only some.
mutants-continue: $(STAMP)
	test -d .mutation/mutants || { echo "no earlier run in .mutation/: make mutants"; exit 1; }
	cd .mutation && rm -rf lambdas tests local tools stacks bench schema security docs pipeline handlers
	cp -r lambdas tests local tools stacks bench schema security docs README.md app.py cdk.json requirements*.txt constraints.txt .mutation/
	cp -r lambdas/pipeline lambdas/handlers .mutation/
	sed 's/^pythonpath = .*/pythonpath = ["."]/' pyproject.toml > .mutation/pyproject.toml
	test "$(REOPEN)" = no || $(BIN)/python tests/mutation/cache.py reset .mutation
	cd .mutation && ../$(BIN)/mutmut run $(ARGS) > mutmut-run.log 2>&1 || true
	cd .mutation && ../$(BIN)/python ../tests/mutation_report.py > ../tests/mutation/results.md
	cat tests/mutation/results.md

# Rewrite constraints.txt from a fresh environment built from the requirements files alone.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	{ echo "# Every package of the development environment, transitive ones too, at the version CI tested."; \
	  echo "# Regenerate after changing a requirements file: make lock (see Makefile)."; \
	  .venv-lock/bin/python -m pip freeze | sed 's/+cpu$$//'; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf cdk.out local-run .pytest_cache .mypy_cache .ruff_cache
