"""The staff groups and what each may reach in the admin.

Created by a data migration and re-created (permissions reset to these lists) by `manage.py setup_groups`.
Every `migrate` also gives Admins the permissions that appeared since (new models, new apps), so "Admins:
everything" stays true without touching what staff changed in the other groups. Staff users get their
rights from these groups; superusers bypass them.
"""

from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver

CREDENTIALS_PERMISSION = "channels.change_channel_credentials"

WAREHOUSE_STAFF = "Warehouse staff"
CHANNEL_MANAGERS = "Channel managers"
ADMINS = "Admins"


def _crud(app_label: str, model: str, *actions: str) -> list[str]:
    return [f"{app_label}.{action}_{model}" for action in actions]


# "app_label.codename" per group. Process and cancel are the Order change actions; the stock import
# page needs change on stock levels.
GROUP_PERMISSIONS: dict[str, list[str]] = {
    WAREHOUSE_STAFF: [
        *_crud("inventory", "stockitem", "view", "change"),
        *_crud("inventory", "stockitemproperty", "view", "add", "change", "delete"),
        *_crud("inventory", "stocklevel", "view", "change"),
        *_crud("inventory", "stockmovement", "view", "change"),
        *_crud("inventory", "location", "view"),
        *_crud("orders", "order", "view", "change"),
        *_crud("orders", "orderitem", "view", "change"),
        *_crud("orders", "postalservice", "view"),
    ],
    CHANNEL_MANAGERS: [
        # Config only: adding a channel means entering its credentials, which needs CREDENTIALS_PERMISSION.
        *_crud("channels", "channel", "view", "change"),
        *_crud("channels", "orderstatusmapping", "view", "add", "change", "delete"),
        *_crud("channels", "shippingmapping", "view", "add", "change", "delete"),
        *_crud("channels", "channellisting", "view", "change"),
        *_crud("channels", "syncrun", "view"),
        # To pick a listing's stock item, a mapping's postal service and a channel's locations.
        *_crud("inventory", "stockitem", "view"),
        *_crud("inventory", "location", "view"),
        *_crud("orders", "postalservice", "view"),
        *_crud("orders", "order", "view"),
    ],
}


def groups_setup(*, group_model, permission_model) -> dict[str, int]:
    """Create the three groups, or reset their permissions to the lists above; Admins get every permission.

    Takes the models so a migration can pass its historical ones. Returns the permission count per group.
    Raises LookupError naming any listed permission that does not exist (a renamed model, a typo).
    """
    every = permission_model.objects.select_related("content_type")
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in every}
    counts = {}
    for name, wanted in GROUP_PERMISSIONS.items():
        missing = sorted(set(wanted) - by_name.keys())
        if missing:
            raise LookupError(f"{name}: no such permission(s): {', '.join(missing)}")
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.set([by_name[codename] for codename in wanted])
        counts[name] = len(set(wanted))
    admins, _ = group_model.objects.get_or_create(name=ADMINS)
    admins.permissions.set(list(by_name.values()))
    counts[ADMINS] = len(by_name)
    return counts


@receiver(post_migrate, dispatch_uid="channels.admins_get_new_permissions")
def admins_grant_new_permissions(sender, using="default", **kwargs) -> None:
    """After each app's migrate, Admins hold every permission there is, that app's new ones included."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # This receiver may be connected before auth's own, which creates the sender's new permissions: create
    # them first (it adds only what is missing), so the last app's new models are not left out.
    create_permissions(sender, verbosity=0, using=using)
    admins = Group.objects.using(using).filter(name=ADMINS).first()
    if admins is not None:
        admins.permissions.add(*Permission.objects.using(using).exclude(group=admins))
