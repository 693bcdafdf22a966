# The two commands of the README. Both set up .venv/ (and Debian packages) on first use.
.PHONY: demo test setup
demo:
	scripts/demo.sh
test:
	scripts/test.sh
setup:
	scripts/setup.sh
