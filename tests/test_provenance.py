import hashlib

from hamnet.provenance import file_fingerprint, software_versions


def test_file_fingerprint_is_size_and_sha256(tmp_path):
    path = tmp_path / "gt.json"
    path.write_bytes(b'{"database": {}}')
    found = file_fingerprint(path)
    assert found["bytes"] == 16
    assert found["sha256"] == hashlib.sha256(b'{"database": {}}').hexdigest()
    path.write_bytes(b'{"database": {} }')
    assert file_fingerprint(path)["sha256"] != found["sha256"]


def test_software_versions_name_the_stack():
    versions = software_versions()
    assert {"hamnet", "python", "torch", "numpy", "cuda"} <= set(versions)
    assert "git_commit" not in versions or len(versions["git_commit"]) == 40
