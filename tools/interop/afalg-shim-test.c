/*
 * afalg-shim-test: checks the AF_ALG calls BlueZ makes (src/shared/crypto.c) against published vectors.
 * Run it under the shim (LD_PRELOAD=.../libafalg-shim.so); on a kernel with AF_ALG it runs unchanged
 * against the kernel, which is how the shim's semantics can be compared with the real thing.
 *   ecb(aes):  FIPS-197 Appendix C.1, and the Core spec's LE Encrypt sample (Vol 6, Part C, 1).
 *   cmac(aes): RFC 4493 section 4, examples 1-4.
 * Exit status 0 when every check passes, 1 otherwise; one line per check on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_alg.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif

static int failures;

static void check(const char *what, int ok)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		failures++;
}

static size_t unhex(const char *s, unsigned char *out)
{
	size_t n = 0;
	unsigned v;

	while (*s) {
		if (*s == ' ') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (unsigned char)v;
		s += 2;
	}
	return n;
}

static int tfm(const char *type, const char *name)
{
	struct sockaddr_alg sa;
	int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.salg_family = AF_ALG;
	strcpy((char *)sa.salg_type, type);
	strcpy((char *)sa.salg_name, name);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int op(int tfm_fd, const unsigned char *key, size_t key_len)
{
	if (setsockopt(tfm_fd, SOL_ALG, ALG_SET_KEY, key, (socklen_t)key_len) < 0)
		return -1;
	return accept(tfm_fd, NULL, 0);
}

/* The exact sequence of crypto.c's alg_encrypt(): one sendmsg with an ALG_SET_OP cmsg, then read. */
static ssize_t ecb_run(int tfm_fd, const char *key_hex, const unsigned char *in, size_t len,
		       uint32_t direction, unsigned char *out)
{
	unsigned char key[32];
	char cbuf[CMSG_SPACE(sizeof(direction))];
	struct msghdr msg;
	struct iovec iov = { (void *)in, len };
	struct cmsghdr *c;
	ssize_t n;
	int fd = op(tfm_fd, key, unhex(key_hex, key));

	if (fd < 0)
		return -1;
	memset(cbuf, 0, sizeof(cbuf));
	memset(&msg, 0, sizeof(msg));
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_OP;
	c->cmsg_len = CMSG_LEN(sizeof(direction));
	memcpy(CMSG_DATA(c), &direction, sizeof(direction));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	n = sendmsg(fd, &msg, 0);
	if (n == (ssize_t)len)
		n = read(fd, out, len);
	else
		n = -1;
	close(fd);
	return n;
}

static void ecb_vector(int tfm_fd, const char *what, const char *key, const char *pt_hex, const char *ct_hex)
{
	unsigned char pt[64], ct[64], out[64], back[64];
	size_t len = unhex(pt_hex, pt);
	char label[160];

	unhex(ct_hex, ct);
	snprintf(label, sizeof(label), "ecb(aes) encrypt: %s", what);
	check(label, ecb_run(tfm_fd, key, pt, len, ALG_OP_ENCRYPT, out) == (ssize_t)len && !memcmp(out, ct, len));
	snprintf(label, sizeof(label), "ecb(aes) decrypt: %s", what);
	check(label, ecb_run(tfm_fd, key, ct, len, ALG_OP_DECRYPT, back) == (ssize_t)len && !memcmp(back, pt, len));
}

static void cmac_vector(int tfm_fd, const char *what, const char *msg_hex, const char *mac_hex, int split)
{
	unsigned char key[16], msg[64], mac[16], out[16];
	size_t len = unhex(msg_hex, msg);
	int fd = op(tfm_fd, key, unhex("2b7e1516 28aed2a6 abf71588 09cf4f3c", key));
	ssize_t sent = 0, n = -1;
	struct pollfd p;
	int readable_before;

	unhex(mac_hex, mac);
	if (fd >= 0) {
		p.fd = fd;
		p.events = POLLIN;
		readable_before = poll(&p, 1, 0);
		if (split && len > 16) /* two sends: MSG_MORE must hold back the MAC */
			sent = send(fd, msg, 16, MSG_MORE) + send(fd, msg + 16, len - 16, 0);
		else if (split)
			sent = 0; /* no send at all: the MAC of the empty message */
		else
			sent = send(fd, msg, len, 0); /* the exact call of crypto.c's aes_cmac() */
		if (sent == (ssize_t)len && readable_before == 0)
			n = read(fd, out, sizeof(out));
		close(fd);
	}
	check(what, n == 16 && !memcmp(out, mac, 16));
}

static void pass_through(void)
{
	int p[2];
	char buf[4] = { 0 };

	check("pipe read/write/close pass through", pipe(p) == 0 && write(p[1], "abc", 3) == 3 &&
						    read(p[0], buf, sizeof(buf)) == 3 && !strcmp(buf, "abc") &&
						    close(p[0]) == 0 && close(p[1]) == 0);
	check("close of a closed fd still fails with EBADF", close(p[0]) < 0 && errno == EBADF);
}

int main(void)
{
	static const char rfc4493_m[] = "6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51"
					" 30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710";
	char m16[64], m40[128];
	int ecb = tfm("skcipher", "ecb(aes)");
	int cmac = tfm("hash", "cmac(aes)");
	unsigned char k[16] = { 0 }, in[15] = { 0 }, out[16];
	int fd;

	check("bind skcipher ecb(aes)", ecb >= 0);
	check("bind hash cmac(aes)", cmac >= 0);
	if (ecb < 0 || cmac < 0) {
		perror("AF_ALG");
		return 1;
	}

	ecb_vector(ecb, "FIPS-197 C.1", "000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
		   "69c4e0d86a7b0430d8cdb78070b4c55a");
	/* Core Vol 6, Part C, 1: the LE Encrypt sample, both values most significant octet first. */
	ecb_vector(ecb, "Core Vol 6 Part C 1 (LE Encrypt sample)", "4C68384139F574D836BCF34E9DFB01BF",
		   "0213243546576879acbdcedfe0f10213", "99ad1b5226a37e3e058e3b8e27c2c666");
	ecb_vector(ecb, "two blocks in one message", "000102030405060708090a0b0c0d0e0f",
		   "00112233445566778899aabbccddeeff 00112233445566778899aabbccddeeff",
		   "69c4e0d86a7b0430d8cdb78070b4c55a 69c4e0d86a7b0430d8cdb78070b4c55a");
	check("ecb(aes) rejects a partial block", ecb_run(ecb, "000102030405060708090a0b0c0d0e0f", in,
							  sizeof(in), ALG_OP_ENCRYPT, out) < 0);

	memcpy(m16, rfc4493_m, 35);
	m16[35] = 0;
	memcpy(m40, rfc4493_m, 89);
	m40[89] = 0;
	cmac_vector(cmac, "cmac(aes) RFC 4493 example 1 (len 0, send of 0 bytes)", "",
		    "bb1d6929 e9593728 7fa37d12 9b756746", 0);
	cmac_vector(cmac, "cmac(aes) RFC 4493 example 1 (len 0, read without send)", "",
		    "bb1d6929 e9593728 7fa37d12 9b756746", 1);
	cmac_vector(cmac, "cmac(aes) RFC 4493 example 2 (len 16)", m16, "070a16b4 6b4d4144 f79bdd9d d04a287c", 0);
	cmac_vector(cmac, "cmac(aes) RFC 4493 example 3 (len 40)", m40, "dfa66747 de9ae630 30ca3261 1497c827", 0);
	cmac_vector(cmac, "cmac(aes) RFC 4493 example 4 (len 64)", rfc4493_m, "51f0bebf 7e3b9d92 fc497417 79363cfe", 0);
	cmac_vector(cmac, "cmac(aes) RFC 4493 example 4 (16 + 48 with MSG_MORE)", rfc4493_m,
		    "51f0bebf 7e3b9d92 fc497417 79363cfe", 1);

	errno = 0;
	check("unknown algorithm: bind fails with ENOENT", tfm("skcipher", "cbc(des)") < 0 && errno == ENOENT);
	fd = tfm("hash", "cmac(aes)");
	errno = 0;
	check("accept before ALG_SET_KEY fails with ENOKEY", fd >= 0 && accept(fd, NULL, 0) < 0 && errno == ENOKEY);
	check("a 15-byte key is rejected", fd >= 0 && setsockopt(fd, SOL_ALG, ALG_SET_KEY, k, 15) < 0);
	if (fd >= 0)
		close(fd);
	pass_through();

	close(ecb);
	close(cmac);
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
