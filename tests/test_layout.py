"""The package stays in rooms a newcomer can read (docs/architecture.md): no library or command module over 400 lines
(the files shipped to the Hub aside) and no function over 50."""

import ast

from .conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "bermo_hf"
HUB_FILES = {"configuration_bermo.py", "modeling_bermo.py"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def test_no_module_over_400_lines_and_no_function_over_50():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in HUB_FILES:
            continue
        source = path.read_text()
        name = path.relative_to(PACKAGE)
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}: {node.name}() {length} lines")
    assert not too_long, "; ".join(too_long)
