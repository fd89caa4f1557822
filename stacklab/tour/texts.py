"""Explanations for each tour step, in English and in Korean (the seed's language).

Each entry: (title, two-line explanation). Steps follow the seed's order: MTU/MSS/PMTUD, the
application layer, the transport layer (TCP then UDP), the network layer (IP, ICMP, ARP).
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "mtu-fragmentation": {
        "en": ("MTU and IPv4 fragmentation",
               "The MTU is the largest packet a link carries at once. A router fragments an IPv4\n"
               "datagram bigger than the next link's MTU when DF is clear; the receiver reassembles."),
        "ko": ("MTU와 IPv4 분할",
               "MTU는 링크가 한 번에 처리할 수 있는 최대 패킷 크기입니다. DF가 꺼진 IPv4 패킷이\n"
               "다음 링크의 MTU보다 크면 라우터가 분할하고, 수신자가 재조립합니다."),
    },
    "df-frag-needed": {
        "en": ("DF and ICMP Fragmentation Needed",
               "With the Don't Fragment bit set, the router may not fragment: it drops the packet and\n"
               "answers ICMP type 3 code 4 (Fragmentation Needed) carrying the next-hop MTU."),
        "ko": ("DF와 ICMP Fragmentation Needed",
               "Don't Fragment 비트가 켜져 있으면 라우터는 분할할 수 없어 패킷을 폐기하고\n"
               "다음 홉 MTU를 담은 ICMP 타입 3 코드 4(Fragmentation Needed)를 돌려보냅니다."),
    },
    "ipv6-ptb": {
        "en": ("IPv6 Packet Too Big",
               "IPv6 routers never fragment. A packet too big for the next link is dropped and the\n"
               "router sends ICMPv6 Packet Too Big with the MTU (never below 1280)."),
        "ko": ("IPv6 Packet Too Big",
               "IPv6 라우터는 절대 분할하지 않습니다. 패킷이 너무 크면 폐기하고\n"
               "MTU를 담은 ICMPv6 Packet Too Big 메시지를 보냅니다(최소 1280)."),
    },
    "mss": {
        "en": ("MSS: the TCP payload that fits the MTU",
               "MSS is the largest TCP payload in one segment: MTU - 40 on IPv4 (20 IP + 20 TCP),\n"
               "MTU - 60 on IPv6. Each side announces it in its SYN; UDP has no MSS, only the MTU."),
        "ko": ("MSS: MTU에 맞는 TCP 페이로드",
               "MSS는 헤더를 뺀 TCP 세그먼트의 최대 데이터 크기입니다: IPv4는 MTU-40, IPv6는 MTU-60.\n"
               "양쪽이 SYN에 알립니다. UDP에는 MSS가 없고 MTU 기준으로만 계산합니다."),
    },
    "pmtud": {
        "en": ("Path MTU Discovery",
               "The sender sets DF; each router whose next link is smaller answers Fragmentation\n"
               "Needed, and the sender lowers its packet size until nothing comes back: the path MTU."),
        "ko": ("경로 MTU 탐색(PMTUD)",
               "송신자가 DF를 켜고 보내면 다음 링크가 작은 라우터가 Fragmentation Needed로 답하고,\n"
               "송신자는 오류가 없을 때까지 크기를 줄여 경로 MTU를 알아냅니다."),
    },
    "pmtud-blackhole": {
        "en": ("PMTUD black hole and PLPMTUD",
               "When ICMP is filtered, classic PMTUD never hears back and big segments vanish.\n"
               "Packetization-layer PMTUD (RFC 4821) notices the timeouts and probes for the size."),
        "ko": ("PMTUD 블랙홀과 PLPMTUD",
               "ICMP가 막히면 고전적 PMTUD는 응답을 받지 못해 큰 세그먼트가 사라집니다.\n"
               "PLPMTUD(RFC 4821)는 타임아웃을 감지하고 크기를 탐색해 복구합니다."),
    },
    "http": {
        "en": ("HTTP",
               "HTTP is extensible through headers and stateless: each request carries what it needs.\n"
               "Here an HTTP/1.1 client fetches a page from a server, both on stacklab's TCP."),
        "ko": ("HTTP",
               "HTTP는 헤더로 쉽게 확장되고 무상태(stateless)입니다.\n"
               "HTTP/1.1 클라이언트가 stacklab TCP 위의 서버에서 페이지를 가져옵니다."),
    },
    "ssh": {
        "en": ("SSH",
               "SSH runs network services securely over an insecure network: after the version\n"
               "banners everything on the wire is ciphertext, unlike HTTP, FTP and SMTP."),
        "ko": ("SSH",
               "SSH는 보안되지 않은 네트워크에서 서비스를 안전하게 운영하는 암호화 프로토콜입니다.\n"
               "버전 배너 이후 모든 바이트는 암호문입니다(HTTP, FTP, SMTP와 달리)."),
    },
    "ftp": {
        "en": ("FTP",
               "FTP transfers files between nodes over two connections: control and data (active or\n"
               "passive). Today it is replaced by FTPS or SFTP, which encrypt."),
        "ko": ("FTP",
               "FTP는 제어와 데이터(능동/수동) 두 연결로 노드 간 파일을 전송합니다.\n"
               "지금은 암호화하는 FTPS나 SFTP로 대체되었습니다."),
    },
    "smtp": {
        "en": ("SMTP",
               "SMTP sends mail across the Internet: EHLO, MAIL FROM, RCPT TO, DATA, QUIT.\n"
               "Here a client hands a message to a server that stores it in a mailbox."),
        "ko": ("SMTP",
               "SMTP는 인터넷으로 메일을 보낼 때 쓰는 프로토콜입니다: EHLO, MAIL FROM, RCPT TO, DATA.\n"
               "클라이언트가 메시지를 서버에 넘기고 서버가 메일함에 저장합니다."),
    },
    "tls": {
        "en": ("TLS: the secure forms of HTTP, FTP and SMTP",
               "TLS runs over TCP: ClientHello and ServerHello in the clear, then everything is\n"
               "ciphertext. HTTPS, FTPS and SMTP STARTTLS check the server's certificate and name."),
        "ko": ("TLS: HTTP, FTP, SMTP의 보안 버전",
               "TLS는 TCP 위에서 동작합니다: ClientHello와 ServerHello만 평문이고\n"
               "나머지는 암호문입니다. HTTPS, FTPS, SMTP STARTTLS는 서버 인증서와\n"
               "이름을 확인합니다."),
    },
    "tcp-handshake": {
        "en": ("TCP 3-way handshake",
               "SYN carries the client's ISN; SYN+ACK the server's ISN and ack = client ISN + 1; ACK\n"
               "acknowledges server ISN + 1. Client: CLOSED, SYN-SENT, ESTABLISHED; server: LISTEN,\n"
               "SYN-RECEIVED, ESTABLISHED."),
        "ko": ("TCP 3-웨이 핸드셰이크",
               "SYN에 클라이언트 ISN, SYN+ACK에 서버 ISN과 승인번호 ISN+1, ACK로 서버 ISN+1을 승인합니다.\n"
               "클라이언트: closed, syn-sent, established / 서버: listen, syn-received, established."),
    },
    "tcp-retransmit": {
        "en": ("TCP retransmission",
               "A lost segment is sent again: once later segments are acknowledged (fast retransmit;\n"
               "RACK waits a quarter RTT for reordering), a lost tail after a tail loss probe, or when\n"
               "the retransmission timer expires (RTO). The receiver still gets every byte, in order."),
        "ko": ("TCP 재전송",
               "잃어버린 세그먼트는 다시 보냅니다: 뒤의 세그먼트가 승인되면(빠른 재전송, RACK), 꼬리 손실은\n"
               "꼬리 손실 탐침(TLP) 뒤에, 또는 시간 초과(RTO) 후.\n"
               "수신자는 모든 바이트를 순서대로 받습니다."),
    },
    "checksum": {
        "en": ("Checksums catch corruption",
               "Every TCP and UDP segment carries a checksum over its data and a pseudo-header.\n"
               "A flipped bit on the link makes it fail: the receiver drops it and TCP resends."),
        "ko": ("체크섬이 손상을 잡아냅니다",
               "TCP와 UDP 세그먼트는 데이터와 의사 헤더에 대한 체크섬을 담습니다.\n"
               "링크에서 비트가 뒤집히면 수신자가 폐기하고 TCP가 다시 보냅니다."),
    },
    "tcp-teardown": {
        "en": ("TCP 4-way teardown",
               "The closer sends FIN (FIN-WAIT-1), the peer ACKs (CLOSE-WAIT; closer in FIN-WAIT-2),\n"
               "later the peer sends its FIN (LAST-ACK) and the closer ACKs it and enters TIME-WAIT."),
        "ko": ("TCP 4-웨이 연결 해제",
               "닫는 쪽이 FIN을 보내고(FIN_WAIT_1) 상대가 ACK(CLOSE_WAIT, 닫는 쪽은 FIN_WAIT_2),\n"
               "상대가 FIN을 보내면(LAST_ACK) 닫는 쪽이 ACK하고 TIME_WAIT에 들어갑니다."),
    },
    "time-wait": {
        "en": ("TIME-WAIT lasts 2·MSL",
               "The side that closed first waits 2·MSL (60 s here, as Linux) so late duplicates die\n"
               "and a lost last ACK can be resent. Here that ACK is lost: the server resends its FIN,\n"
               "TIME-WAIT ACKs it again and restarts its 2·MSL. Virtual time makes the wait cost\n"
               "no wall time."),
        "ko": ("TIME_WAIT는 2·MSL 동안",
               "먼저 닫은 쪽은 지연 패킷이 사라지고 마지막 ACK를 다시 보낼 수 있도록 2·MSL(60초)을\n"
               "기다립니다. 여기서는 그 ACK가 손실되어 서버가 FIN을 다시 보내고, TIME-WAIT는 다시\n"
               "ACK하며 2·MSL을 새로 시작합니다. 가상 시간이라 실제로는 기다리지 않습니다."),
    },
    "udp": {
        "en": ("UDP datagrams",
               "UDP sends datagrams with an 8-byte header and a checksum: no handshake, no\n"
               "retransmission, no ordering. What is lost stays lost."),
        "ko": ("UDP 데이터그램",
               "UDP는 8바이트 고정 헤더와 체크섬만 가진 데이터그램을 보냅니다:\n"
               "핸드셰이크도 재전송도 순서 보장도 없습니다."),
    },
    "tcp-vs-udp": {
        "en": ("TCP vs UDP under loss",
               "On the same lossy, reordering link TCP delivers every byte in order (it retransmits);\n"
               "UDP delivers what arrives, in the order it arrives."),
        "ko": ("손실 환경의 TCP 대 UDP",
               "같은 손실/순서 뒤바뀜 링크에서 TCP는 재전송으로 모든 바이트를 순서대로 전달하고,\n"
               "UDP는 도착한 것만 도착한 순서대로 전달합니다."),
    },
    "flows-bottleneck": {
        "en": ("Flows sharing a bottleneck",
               "Reno and two CUBICs share 10 Mbit/s: watch each one's share (Jain's index) and\n"
               "the queue: drop-tail fills it (RTT 40 -> 120+ ms); CoDel holds it near 5 ms."),
        "ko": ("병목을 나누어 쓰는 흐름들",
               "Reno와 CUBIC 둘이 10 Mbit/s를 나눕니다: 각자의 몫(Jain 지수)과 큐를 보세요.\n"
               "drop-tail은 큐를 가득 채우고(RTT 40 -> 120 ms 이상), CoDel은 약 5 ms로 유지합니다."),
    },
    "routing-ttl": {
        "en": ("IP routing and TTL",
               "Each router picks the next hop by longest-prefix match and decrements the TTL; at zero\n"
               "it drops the packet and sends Time Exceeded. traceroute uses this to list the routers."),
        "ko": ("IP 라우팅과 TTL",
               "라우터는 최장 접두사 일치로 다음 홉을 고르고 TTL을 줄입니다. 0이 되면 폐기하고\n"
               "Time Exceeded를 보냅니다. traceroute는 이를 이용해 라우터를 나열합니다."),
    },
    "ping": {
        "en": ("ICMP ping",
               "ICMP tests whether nodes can talk: an echo request goes out, an echo reply comes\n"
               "back, and the round-trip time is measured."),
        "ko": ("ICMP ping",
               "ICMP는 노드 사이 통신이 되는지 확인(테스트)할 때 씁니다: 에코 요청을 보내고\n"
               "에코 응답을 받아 왕복 시간을 잽니다."),
    },
    "arp": {
        "en": ("ARP",
               "Before sending to an IPv4 neighbour a host needs its MAC address: it broadcasts\n"
               "'who-has', the owner replies, and packets wait in a queue meanwhile."),
        "ko": ("ARP",
               "IPv4 이웃에게 보내기 전에 MAC 주소가 필요합니다: 'who-has'를 브로드캐스트하면\n"
               "주인이 응답하고, 그동안 패킷은 큐에서 기다립니다."),
    },
    "lan-dhcp-dns": {
        "en": ("A LAN that boots with DHCP and DNS",
               "A new host has no address: it broadcasts DHCP DISCOVER, takes the OFFER, "
               "REQUESTs it,\n"
               "checks with ARP that nobody uses it, and learns its router and DNS server "
               "from the ACK."),
        "ko": ("DHCP와 DNS로 시작하는 LAN",
               "새 호스트는 주소가 없어 DHCP DISCOVER를 브로드캐스트하고, "
               "OFFER를 받아 REQUEST하며,\n"
               "ARP로 주소 충돌을 확인한 뒤 ACK에서 라우터와 DNS 서버를 배웁니다."),
    },
    "home-nat": {
        "en": ("A home network behind NAT",
               "The home router rewrites each connection's source to its one outside address "
               "and\nport (masquerade) and remembers it (conntrack), so answers and ICMP find "
               "the way back."),
        "ko": ("NAT 뒤의 가정 네트워크",
               "가정용 라우터는 연결마다 출발지를 바깥 주소와 포트로 바꾸고(매스커레이드) "
               "기억합니다\n(conntrack). 그래서 응답과 ICMP 오류가 안쪽 호스트로 되돌아옵니다."),
    },
    "multicast-stream": {
        "en": ("A multicast stream",
               "One sender, many receivers: hosts join a group (IGMP/MLD report), the switch "
               "floods\nthe group's frames, and only members keep them. No member, no copy on "
               "the host."),
        "ko": ("멀티캐스트 스트림",
               "송신자 하나, 수신자 여럿: 호스트가 그룹에 가입하면(IGMP/MLD 보고) 스위치가 "
               "프레임을\n모든 포트로 보내고, 가입한 호스트만 받습니다."),
    },
}

ORDER = list(TEXTS)
