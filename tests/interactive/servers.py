"""Servers the interactive tests run inside jobs (stdlib only: jobs have no network to install from).

ECHO_SERVER answers HTTP (a page at /, the request headers at /headers, the body of a POST back) and
echoes WebSocket messages, on the TCP or Unix socket its conf's `interactive_socket` names. It exits
cleanly (code 0) on SIGTERM, as a well-behaved server does when the session ends.
"""

ECHO_SERVER = r"""
import asyncio, base64, hashlib, os, signal, struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PAGE = b"<!doctype html><title>echo</title><h1 id=served>served by the echo server</h1>"


def frame(opcode, data):
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
    return head + data


async def websocket(reader, writer, headers):
    key = headers["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    proto = headers.get("sec-websocket-protocol", "").split(",")[0].strip()
    extra = f"Sec-WebSocket-Protocol: {proto}\r\n" if proto else ""
    writer.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n".encode()
    )
    while True:
        b1, b2 = await reader.readexactly(2)
        opcode, n = b1 & 0x0F, b2 & 0x7F
        if n == 126:
            n = struct.unpack(">H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4) if b2 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(n)))
        if opcode == 8:
            writer.write(frame(8, data[:2]))
            await writer.drain()
            return
        if opcode == 9:
            writer.write(frame(10, data))
        elif opcode in (1, 2):
            writer.write(frame(opcode, data))
        await writer.drain()


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                await websocket(reader, writer, headers)
                return
            size = int(headers.get("content-length") or 0)
            body = await reader.readexactly(size) if size else b""
            if path.startswith("/headers"):
                payload = ("path: " + path + "\n" + "\n".join(f"{k}: {v}" for k, v in headers.items())).encode()
            elif method == "POST":
                payload = body
            elif path.startswith("/stream"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(3):
                    part = f"part {i}\n".encode()
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                    await asyncio.sleep(0.5)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                continue
            elif path.startswith("/go-home"):
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: /home\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                continue
            else:
                payload = PAGE
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(payload))
            writer.write(payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    where = os.environ["interactive_socket"]
    if where.startswith("unix://"):
        path = where[len("unix://"):]
        server = await asyncio.start_unix_server(handle, path)
        os.chmod(path, 0o777)
    else:
        host, port = where.rsplit(":", 1)
        server = await asyncio.start_server(handle, host, int(port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("echo server listening on", where, flush=True)
    async with server:
        await stop.wait()
    print("echo server stopped", flush=True)


asyncio.run(main())
"""
