"""identity keys: emails and usernames unique by their NFKC case-folded form

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00.000000

"""

import unicodedata

import idna
import sqlalchemy as sa
import structlog
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = structlog.get_logger(__name__)

users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("username", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("email_key", sa.String()),
    sa.column("username_key", sa.String()),
)


# The key functions as they were when this migration was written (models/identity/names.py),
# copied so that later changes there cannot change what this backfill does.
def _fold(text):
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).strip().casefold())


def _email_key(email):
    local, _, domain = unicodedata.normalize("NFKC", email).strip().rpartition("@")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii").lower()
    except UnicodeError:
        domain = _fold(domain)
    return f"{_fold(local)}@{domain}"


def _backfill(conn):
    """Set both keys on every row; the oldest account keeps a shared canonical email.

    Accounts registered before this revision may already be look-alikes of each other
    (a full-width ``alice@x`` beside the ASCII one). The newer ones get the key ``duplicate:<id>``,
    which no address folds to: they still log in by username, and an admin can give
    them a distinct email. Usernames were ``[a-z0-9_]`` and unique, so they cannot clash.
    """
    rows = conn.execute(
        sa.select(users.c.id, users.c.email, users.c.username).order_by(
            users.c.created_at, users.c.id
        )
    ).all()
    taken = set()
    keys = []
    for row in rows:
        key = _email_key(row.email)
        if key in taken or len(key) > 254:
            log.warning("identity_key_duplicate", user_id=str(row.id))
            key = f"duplicate:{row.id}"
        taken.add(key)
        keys.append({"uid": row.id, "ek": key, "uk": _fold(row.username)})
    if keys:  # one executemany, not a round trip per account
        conn.execute(
            users.update()
            .where(users.c.id == sa.bindparam("uid"))
            .values(email_key=sa.bindparam("ek"), username_key=sa.bindparam("uk")),
            keys,
        )


def upgrade():
    op.add_column("users", sa.Column("email_key", sa.String(length=254), nullable=True))
    op.add_column("users", sa.Column("username_key", sa.String(length=32), nullable=True))
    _backfill(op.get_bind())
    op.alter_column("users", "email_key", nullable=False)
    op.alter_column("users", "username_key", nullable=False)
    op.create_unique_constraint(op.f("uq_users_email_key"), "users", ["email_key"])
    op.create_unique_constraint(op.f("uq_users_username_key"), "users", ["username_key"])
    op.drop_constraint(op.f("uq_users_email"), "users", type_="unique")
    op.drop_constraint(op.f("uq_users_username"), "users", type_="unique")
    op.drop_constraint(op.f("ck_users_email_lowercase"), "users", type_="check")
    op.drop_constraint(op.f("ck_users_username_format"), "users", type_="check")
    op.create_check_constraint(
        op.f("ck_users_username_format"), "users", "username ~ '^[A-Za-z0-9_.-]{3,32}$'"
    )


def downgrade():
    # The old schema stored both names lower-cased, usernames in [a-z0-9_] only.
    conn = op.get_bind()
    misfits = conn.execute(
        sa.text("SELECT count(*) FROM users WHERE lower(username) !~ '^[a-z0-9_]{3,32}$'")
    ).scalar_one()
    if misfits:
        raise RuntimeError(
            f"{misfits} usernames do not fit 0001's [a-z0-9_]{{3,32}} (they use '-' or '.'); "
            "rename them before downgrading below 0010"
        )
    op.drop_constraint(op.f("ck_users_username_format"), "users", type_="check")
    op.execute("UPDATE users SET email = lower(email), username = lower(username)")
    op.create_check_constraint(
        op.f("ck_users_username_format"), "users", "username ~ '^[a-z0-9_]{3,32}$'"
    )
    op.create_check_constraint(op.f("ck_users_email_lowercase"), "users", "email = lower(email)")
    op.create_unique_constraint(op.f("uq_users_username"), "users", ["username"])
    op.create_unique_constraint(op.f("uq_users_email"), "users", ["email"])
    op.drop_constraint(op.f("uq_users_username_key"), "users", type_="unique")
    op.drop_constraint(op.f("uq_users_email_key"), "users", type_="unique")
    op.drop_column("users", "username_key")
    op.drop_column("users", "email_key")
