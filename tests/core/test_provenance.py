"""What a run records of the machine it ran on."""

import pytest


@pytest.mark.parametrize(("flags", "isa"), [
    ("avx2,avx512f,avx512_vnni,amx_tile,amx_int8", "AMX"),
    ("avx2,avx512f,avx512_vnni", "AVX-512+VNNI"), ("avx2,avx512f", "AVX-512"),
    ("avx2,avx_vnni", "AVX2+VNNI"), ("avx2", "AVX2"), ("asimd", "NEON"), ("none", "none"),
    (None, None)])
def test_the_instruction_set_a_speedup_is_read_against(flags, isa):
    from siteml.core.provenance import instruction_set

    assert instruction_set(flags) == isa
