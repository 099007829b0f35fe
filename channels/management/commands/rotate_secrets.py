from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField, Value
from django.db.models.functions import Cast

from channels.fields import SecretKeyError, secret_rotate, secrets_cipher
from channels.models import Channel


class Command(BaseCommand):
    help = (
        "Re-encrypt every channel's credentials with the first key of STOCKLINE_SECRET_KEYS. Run it after "
        "putting a new key first; once it has succeeded, the old keys can be removed from the list."
    )

    def handle(self, *args, **options):
        try:
            secrets_cipher()
            rotated = self._rotate_all()
        except SecretKeyError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(f"Re-encrypted the credentials of {rotated} channel(s) with the first key.")

    @transaction.atomic
    def _rotate_all(self) -> int:
        # The stored tokens, read as text: MultiFernet.rotate re-encrypts without the secrets reaching this code.
        rows = (
            Channel.objects.select_for_update().order_by("pk")
            .annotate(token=Cast("credentials", TextField())).values_list("pk", "name", "token")
        )
        rotated = 0
        for pk, name, token in rows:
            try:
                new_token = secret_rotate(token)
            except SecretKeyError as exc:
                raise SecretKeyError(f"Channel {name!r}: {exc}") from None
            Channel.objects.filter(pk=pk).update(credentials=Value(new_token, output_field=TextField()))
            rotated += 1
        return rotated
