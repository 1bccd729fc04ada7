"""Password hashes: argon2id with explicit parameters, and hashes made before them still verify."""

from argon2 import PasswordHasher

from portside.auth.passwords import hash_password, needs_rehash, verify_password

PASSWORD = "Portside-Passw0rd"


def test_new_hashes_use_owasps_argon2id_parameters():
    # 19 MiB, 2 passes, 1 lane: what each verification costs a server process in memory.
    assert hash_password(PASSWORD).startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_hash_verifies_only_its_own_password():
    stored = hash_password(PASSWORD)
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "x")


def test_hashes_made_with_the_earlier_parameters_still_verify():
    # argon2-cffi's defaults, which Portside used before: 64 MiB, 3 passes, 4 lanes.
    earlier = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    assert verify_password(earlier, PASSWORD)
    assert not verify_password(earlier, "Another-Passw0rd")


def test_a_malformed_hash_verifies_nothing():
    assert not verify_password("not a hash", PASSWORD)
    assert not verify_password("", PASSWORD)


def test_hashes_made_with_other_parameters_need_rehashing():
    assert not needs_rehash(hash_password(PASSWORD))
    assert needs_rehash(PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD))
    assert needs_rehash(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD))
    assert not needs_rehash("not a hash")
