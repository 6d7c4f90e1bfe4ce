"""The development .env: read by every entry point without overriding the environment, updated in place."""

import os

from cpo.envfile import env_file_load, env_file_read, env_file_update


def test_the_file_is_read_as_a_shell_would_and_the_environment_wins(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text(
        '# a comment\n\nCPO_T_PLAIN=1\nexport CPO_T_EXPORTED=two\nCPO_T_QUOTED="three # not a comment"\n'
        "CPO_T_SET=from-file\nnot a line\n"
    )
    monkeypatch.setenv("CPO_ENV_FILE", str(path))
    monkeypatch.setenv("CPO_T_SET", "from-environment")
    for name in ("CPO_T_PLAIN", "CPO_T_EXPORTED", "CPO_T_QUOTED"):
        monkeypatch.delenv(name, raising=False)
    env_file_load()
    assert (os.environ["CPO_T_PLAIN"], os.environ["CPO_T_EXPORTED"], os.environ["CPO_T_QUOTED"]) == (
        "1",
        "two",
        "three # not a comment",
    )
    assert os.environ["CPO_T_SET"] == "from-environment"
    for name in ("CPO_T_PLAIN", "CPO_T_EXPORTED", "CPO_T_QUOTED"):
        monkeypatch.delenv(name)


def test_an_empty_cpo_env_file_reads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CPO_ENV_FILE", "")
    monkeypatch.delenv("CPO_T_NEVER", raising=False)
    env_file_load()  # the checkout's .env (if any) is not read either
    assert "CPO_T_NEVER" not in os.environ


def test_an_update_replaces_its_keys_in_place_and_keeps_every_other_line(tmp_path):
    path = tmp_path / ".env"
    env_file_update(path=path, values={"A": "1", "B": "2"}, header="written by a test")
    with path.open("a") as f:
        f.write("# mine\nMINE=kept\n")
    env_file_update(path=path, values={"B": "3", "C": "4"})
    assert path.read_text() == "# written by a test\nA=1\nB=3\n# mine\nMINE=kept\nC=4\n"
    assert env_file_read(path=path) == {"A": "1", "B": "3", "MINE": "kept", "C": "4"}
    assert path.stat().st_mode & 0o777 == 0o600
