# Loaded by schemathesis at start (tests/schemathesis/run.mjs sets SCHEMATHESIS_HOOKS).
#
# Some CPython 3.11 and 3.12 releases raise SystemError("AST constructor recursion depth
# mismatch") from ast.parse when it runs deep in a call stack. Hypothesis parses source files to
# describe the lambdas in its strategies' names, deep in schemathesis's schema walk, and the
# error then ends a test phase. A lambda Hypothesis cannot read is described as "<unknown>"
# anyway; this makes the error read the same. It changes names only, never what is generated
# or checked.

import hypothesis.internal.lambda_sources as lambda_sources

_describe = lambda_sources._lambda_description


def _describe_or_unknown(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_or_unknown
