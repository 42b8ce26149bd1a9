from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self):
        from django.db.models.signals import pre_delete

        from accounts.models import User

        pre_delete.connect(_signed_out_on_delete, sender=User, dispatch_uid="account-sockets")


def _signed_out_on_delete(sender, instance, **kwargs) -> None:
    """A deleted account's open sockets close once the deletion commits, as on deactivation
    (User.save notices that one). Deletion never passes through a save — the admin deletes by
    queryset — so it is caught here."""
    from workbench import realtime

    realtime.user_signed_out(instance.pk)
