"""Tools Claude can call from a notebook: your functions, a look at the kernel, a Python runner.

    box = ToolBox([function_tool(f), *inspection_tools(shell.user_ns, redact=hide)], redact=hide)
    block, output = box.run(tool_use)      # the tool_result block for the next user turn

* :mod:`.functions`: ``function_tool(f)``, a plain function as a tool (schema from type hints,
  description from the docstring);
* :mod:`.schema`: type hints as JSON schemas, and JSON back as the hinted Python values;
* :mod:`.inspection`: ``list_variables``, ``describe_variable``, ``show_figure`` (read-only);
* :mod:`.python`: ``run_python``, a snippet run in the kernel once the user approves it;
* :mod:`.toolbox`: the tools of one loop, each call checked, run and redacted;
* :mod:`.figures`, :mod:`.text`, :mod:`.base`: images, budgets and the two value types.

This wing never imports IPython or ipywidgets (the shell is passed in) and imports pandas,
pydantic and matplotlib only through the values it is given. The notebook layer imports it only
when a cell asks for tools.
"""

from __future__ import annotations

from ..errors import ToolDescriptionError
from .base import Tool, ToolOutput
from .functions import function_tool
from .inspection import inspection_tools
from .python import Approval, ask_yes_no, python_tool
from .toolbox import ToolBox

__all__ = [
    "Approval",
    "Tool",
    "ToolBox",
    "ToolDescriptionError",
    "ToolOutput",
    "ask_yes_no",
    "function_tool",
    "inspection_tools",
    "python_tool",
]
