from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Usage and billing"

    def ready(self):
        from django.conf import settings
        from django.db.models.signals import pre_delete

        from billing.rollups import detach_before_delete

        # Lazy senders: providers is right of billing (DESIGN §3), named, never imported.
        for sender in (settings.AUTH_USER_MODEL, "accounts.Team", "providers.ProviderCredential"):
            pre_delete.connect(detach_before_delete, sender=sender, dispatch_uid=f"rollup:{sender}")
