"""run_python in a real IPython shell: what it captures on a yes, what it leaves on a no, and
ask_yes_no's answers."""

from __future__ import annotations

import builtins
from collections.abc import Callable

import matplotlib.pyplot as plt
import pytest
from IPython.core.error import StdinNotImplementedError
from IPython.core.interactiveshell import InteractiveShell

from claude_magics.prompt.budget import estimate_tokens
from claude_magics.tools import Approval, ToolBox, ToolOutput, ask_yes_no, python_tool

from .support import PNG_MAGIC, call, images_of, text_of


def runner(
    shell: InteractiveShell, answer: Approval = Approval.YES, budget: int = 2000
) -> tuple[ToolBox, list[str]]:
    asked: list[str] = []

    def approve(code: str) -> Approval:
        asked.append(code)
        return answer

    return ToolBox([python_tool(shell, approve=approve, budget_tokens=budget)]), asked


def run(shell: InteractiveShell, code: str, **kw: object) -> ToolOutput:
    box, _ = runner(shell, **kw)  # type: ignore[arg-type]
    return call(box, "run_python", code=code)[1]


def test_yes_runs_the_snippet_and_returns_stdout_and_the_value(
    kernel: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    box, asked = runner(kernel)
    count = kernel.execution_count
    transformers = list(kernel.ast_transformers)
    custom = kernel.custom_exceptions
    kernel.user_ns["_"] = "untouched"
    code = "print('hi')\nt_x = 41\nt_x + 1"
    block, output = call(box, "run_python", code=code)
    assert asked == [code]
    assert block == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "result: 42\n\nstdout:\nhi\n",
    }
    assert output.summary == "ran, 1 line printed, → 42"
    assert output.stop is None
    # It ran in the user's namespace, silently: no Out[n], no `_`, no history, nothing left.
    assert kernel.user_ns["t_x"] == 41
    assert kernel.user_ns["_"] == "untouched"
    assert kernel.execution_count == count
    assert not [k for k in kernel.user_ns if k.startswith("_claude_magics")]
    assert kernel.ast_transformers == transformers
    assert kernel.custom_exceptions == custom
    assert capsys.readouterr().out == ""


def test_it_works_from_inside_a_running_cell_as_in_the_magic(kernel: InteractiveShell) -> None:
    # %%claude calls the tool while its own cell runs: run_cell inside run_cell.
    box, _ = runner(kernel)
    kernel.user_ns["t_box"] = box
    use = {"type": "tool_use", "id": "t", "name": "run_python", "input": {"code": "print(7)\n8"}}
    kernel.user_ns["t_use"] = use
    outer = kernel.run_cell("t_out = t_box.run(t_use)[1]\n'outer value'")  # type: ignore[no-untyped-call]
    assert kernel.user_ns["t_out"].content == "result: 8\n\nstdout:\n7\n"
    assert outer.result == "outer value"  # the outer cell's own value is not disturbed
    assert outer.success


def test_an_error_comes_back_to_claude_and_is_not_printed(
    kernel: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = (kernel.custom_exceptions, kernel.CustomTB)
    output = run(kernel, "t_before = 1\nprint('start')\n1/0\nt_after = 2")
    assert output.is_error
    content = text_of(output)
    assert content.startswith("error: ZeroDivisionError: division by zero\n")
    assert "    1/0" in content  # the snippet's own line
    assert content.endswith("\n\nstdout:\nstart\n")  # IPython's own traceback is not in it
    assert "\x1b[" not in content
    assert output.summary == "ZeroDivisionError: division by zero"
    assert kernel.user_ns["t_before"] == 1
    assert "t_after" not in kernel.user_ns
    assert capsys.readouterr().out == ""  # IPython's traceback went to Claude only
    assert (kernel.custom_exceptions, kernel.CustomTB) == custom
    kernel.run_cell("t_ok = 1")  # type: ignore[no-untyped-call]  # and the shell still works normally
    assert kernel.user_ns["t_ok"] == 1


def test_a_syntax_error_says_where(kernel: InteractiveShell) -> None:
    output = run(kernel, "t_s = 1\ndef (:")
    assert output.is_error
    content = text_of(output)
    assert content.startswith("error: SyntaxError: invalid syntax")
    assert "def (:" in content
    assert "compilerop" not in content
    assert "t_s" not in kernel.user_ns  # nothing of a cell that does not parse runs


def test_stderr_is_captured(kernel: InteractiveShell) -> None:
    content = text_of(run(kernel, "import sys\nprint('careful', file=sys.stderr)"))
    assert content == "stderr:\ncareful\n"


def test_a_trailing_semicolon_hides_the_value_as_in_ipython(kernel: InteractiveShell) -> None:
    output = run(kernel, "t_v = 3\nt_v;  # quiet")
    assert output.content == "Ran; it printed nothing and its last line has no value."
    assert output.summary == "ran"


def test_ipython_syntax_works(kernel: InteractiveShell) -> None:
    kernel.user_ns["t_visible"] = 1
    content = text_of(run(kernel, "%who_ls"))
    assert content.startswith("result: [")
    assert "'t_visible'" in content


def test_new_figures_come_back_as_images_and_old_ones_do_not(kernel: InteractiveShell) -> None:
    old = plt.figure()
    output = run(
        kernel,
        "import matplotlib.pyplot as plt\nt_fig = plt.figure(figsize=(3, 2))\n"
        "plt.plot([1, 2])\nplt.title('New')",
    )
    assert not output.is_error
    (png,) = images_of(output)
    assert png.startswith(PNG_MAGIC)
    assert "1 new figure(s), as images below." in text_of(output)
    assert "Figure 2: 300x200 px PNG; axes 'New'" in text_of(output)
    assert plt.gcf() is kernel.user_ns["t_fig"]  # the current figure is left as the code left it
    plt.close(old)


def test_figures_are_caught_before_an_inline_backend_closes_them(
    kernel: InteractiveShell,
) -> None:
    def flush_figures() -> None:  # what matplotlib-inline does after every execution
        plt.close("all")

    kernel.events.register("post_execute", flush_figures)
    try:
        output = run(kernel, "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nNone")
    finally:
        kernel.events.unregister("post_execute", flush_figures)
    assert plt.get_fignums() == []  # the flush did run
    assert len(images_of(output)) == 1
    assert len(kernel.events.callbacks["post_execute"]) == len(
        [c for c in kernel.events.callbacks["post_execute"] if c.__name__ != "collect"]
    )


def test_long_output_keeps_its_start_and_end_within_the_budget(kernel: InteractiveShell) -> None:
    content = text_of(run(kernel, "for i in range(5000): print('line', i)", budget=300))
    assert estimate_tokens(content) <= 300
    assert content.startswith("stdout:\nline 0\n")
    assert content.endswith("line 4999\n")
    assert "characters left out here; print less, or print a part]" in content


@pytest.mark.parametrize(
    ("answer", "stop"),
    [
        (Approval.NO, "declined: the snippet is in a new cell below"),
        (Approval.NO_INPUT, "no one to ask (no input here): the snippet is in a new cell below"),
    ],
)
def test_no_runs_nothing_and_puts_the_snippet_in_a_new_cell(
    kernel: InteractiveShell, answer: Approval, stop: str
) -> None:
    code = "t_never = 1\nprint('ran')"
    box, asked = runner(kernel, answer)
    block, output = call(box, "run_python", code=code)
    assert asked == [code]
    assert "t_never" not in kernel.user_ns
    assert kernel.rl_next_input == code  # IPython's set_next_input, as a kernel sends it
    assert output.stop == stop
    assert output.summary == stop
    assert output.is_error and block["is_error"] is True
    assert block["content"] == f"Not run ({stop}); nothing in the kernel changed."


def test_ctrl_c_in_the_snippet_stops_the_loop(kernel: InteractiveShell) -> None:
    custom = kernel.custom_exceptions
    with pytest.raises(KeyboardInterrupt):
        run(kernel, "t_k = 1\nraise KeyboardInterrupt")
    assert kernel.custom_exceptions == custom


# -- ask_yes_no --------------------------------------------------------------------------------


def answering(value: str) -> Callable[[str], str]:
    return lambda prompt: value


def raising(exc: BaseException) -> Callable[[str], str]:
    def ask(prompt: str) -> str:
        raise exc

    return ask


@pytest.mark.parametrize(
    ("input_fn", "expected"),
    [
        (answering("y"), Approval.YES),
        (answering("  YES \n"), Approval.YES),
        (answering("Y"), Approval.YES),
        (answering("n"), Approval.NO),
        (answering(""), Approval.NO),
        (answering("yeah"), Approval.NO),
        (raising(EOFError()), Approval.NO_INPUT),
        (raising(OSError("stdin closed")), Approval.NO_INPUT),
        (raising(StdinNotImplementedError("no stdin")), Approval.NO_INPUT),
        (raising(KeyboardInterrupt()), Approval.NO),
    ],
)
def test_ask_yes_no(input_fn: Callable[[str], str], expected: Approval) -> None:
    assert ask_yes_no("Run it? [y/N] ", input_fn) is expected


def test_ask_yes_no_lets_other_errors_through() -> None:
    with pytest.raises(ValueError, match="odd"):
        ask_yes_no("?", raising(ValueError("odd")))


def test_ask_yes_no_uses_input_as_it_is_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return "yes"

    # ipykernel swaps builtins.input for each cell: the default must be looked up late.
    monkeypatch.setattr(builtins, "input", fake_input)
    assert ask_yes_no("Run it? ") is Approval.YES
    assert prompts == ["Run it? "]
