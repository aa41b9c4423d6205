from paramiko import HostKeys as HostKeys

class InvalidHostKey(Exception):
    line: str
    exc: Exception
