from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """The demo shop and the benchmarks: installed with the sandbox only on a developer's machine and in the tests."""

    name = "devtools"
    verbose_name = "Development tools"
