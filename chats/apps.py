from django.apps import AppConfig


class ChatsConfig(AppConfig):
    name = "chats"
    verbose_name = "Chat"

    def ready(self):
        from django.db.models.signals import pre_delete

        from chats.attachments import files_release_on_delete
        from chats.models import Attachment

        pre_delete.connect(files_release_on_delete, sender=Attachment, dispatch_uid="chat-files")
