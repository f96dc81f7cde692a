"""Helpers for tests that drive a real IPython shell."""


def run(shell, source):
    """Run a cell in the shell, capturing its outputs; return (result, captured)."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = shell.run_cell(source)
    return result, captured


def mimetypes(captured):
    """The MIME types of every rich output a cell displayed."""
    return [key for output in captured.outputs for key in output.data]
