from django.db import migrations, models


def fill_keys(apps, schema_editor):
    """Existing accounts keep their usernames. Where two already share a skeleton ("Alice" and
    "alice"), the later one's key gets its id appended so the constraint holds; new sign-ups
    still can't take either look-alike."""
    from accounts.names import username_key, username_shape

    User = apps.get_model("accounts", "User")
    seen = set()
    for user in User.objects.order_by("pk").only("pk", "username"):
        keys = {}
        for field, skeleton in (("username_key", username_key), ("username_shape", username_shape)):
            key = skeleton(user.username)
            if (field, key) in seen:
                key = f"{key}#{user.pk}"
            seen.add((field, key))
            keys[field] = key
        User.objects.filter(pk=user.pk).update(**keys)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_user_time_zone_approval_checklist")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_key",
            field=models.CharField(editable=False, max_length=600, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="username_shape",
            field=models.CharField(editable=False, max_length=600, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_key",
            field=models.CharField(editable=False, max_length=600, unique=True),
        ),
        migrations.AlterField(
            model_name="user",
            name="username_shape",
            field=models.CharField(editable=False, max_length=600, unique=True),
        ),
    ]
