from django.apps import AppConfig


class RagConfig(AppConfig):
    name = "rag"
    verbose_name = "Collections (RAG)"

    def ready(self):
        from django.db.models.signals import pre_delete

        from rag.models import Collection, Document
        from rag.services import storage_release_on_delete

        for sender in (Collection, Document):
            pre_delete.connect(storage_release_on_delete, sender=sender, dispatch_uid="rag-storage")
