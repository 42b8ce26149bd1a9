from django.core.management.base import BaseCommand, CommandError

from providers.services import credentials_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every provider API key with the newest key in FIELD_ENCRYPTION_KEY. "
        "Rotate by putting the new key first, running this, then removing the old key."
    )

    def handle(self, *args, **options):
        done, unreadable = credentials_reencrypt()
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {done} key(s) with the newest FIELD_ENCRYPTION_KEY.")
        )
        if unreadable:
            raise CommandError(
                "These keys can't be decrypted with any configured key and were left as they are "
                "(re-enter them in Settings → Providers): " + "; ".join(unreadable)
            )
