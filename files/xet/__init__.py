"""The Hugging Face Xet storage format: chunking, hashes, xorbs and shards.

Pure functions over bytes and streams, no Django: the file services and views build the Xet CAS server on top.
Hashes are raw 32-byte ``bytes`` everywhere; ``hashes.to_hex`` gives the string form used in URLs.
"""
