from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"

    def ready(self):
        # The superusers' egress allowlist adds to WORKBENCH_EGRESS_ALLOW (providers.egress_allow).
        from providers.egress_allow import allowed_entries
        from workbench import egress

        egress.register_allow_source(allowed_entries)
