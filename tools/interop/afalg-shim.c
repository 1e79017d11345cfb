/*
 * afalg-shim: a user-space stand-in for the kernel's AF_ALG crypto sockets, loaded with LD_PRELOAD.
 *
 * Why: BlueZ's controller emulator btvirt creates a bt_crypto context (src/shared/crypto.c) for every
 * LE controller, and that context opens AF_ALG sockets. On kernels without AF_ALG (CONFIG_CRYPTO_USER_API
 * off, as on our CI machines) every LE client of `btvirt -s` is accepted and closed at once. This library
 * emulates exactly the two algorithms BlueZ uses, with OpenSSL:
 *   - type "skcipher", name "ecb(aes)": LE Encrypt, link-layer session keys, RPA hashing
 *   - type "hash",     name "cmac(aes)": SMP Secure Connections functions, ATT signing
 * and exactly the call sequence crypto.c performs:
 *   socket(AF_ALG, SOCK_SEQPACKET[|SOCK_CLOEXEC], 0) -> bind(sockaddr_alg) ->
 *   setsockopt(SOL_ALG, ALG_SET_KEY) -> accept() -> sendmsg(ALG_SET_OP cmsg)/send()/write() -> read()
 *   -> close().
 * Every emulated socket is a real eventfd, so close/select/poll/epoll on it behave; an operation fd is
 * made readable (counter 1) once a result is waiting. Every call on any other fd, and every other
 * address family, goes to the real libc (dlsym RTLD_NEXT).
 *
 * Semantics follow the kernel's algif_skcipher / algif_hash where BlueZ can see them:
 *   - send with MSG_MORE accumulates; a send without it completes the operation;
 *   - hash: read() returns the 16-byte MAC (truncated to the read size); a read with nothing sent
 *     returns the MAC of the empty message (as hash_recvmsg does);
 *   - skcipher: input must be a whole number of 16-byte blocks (EINVAL otherwise); ALG_SET_OP selects
 *     encrypt (1) or decrypt (0); the default is decrypt, as in the kernel;
 *   - unknown algorithms fail bind() with ENOENT; accept() without a key fails with ENOKEY.
 * Not emulated: other algorithms, AIO, splice/sendfile, recvmsg, multi-threaded callers (btvirt is
 * single-threaded). Set AFALG_SHIM_DEBUG=1 to trace the emulated calls on stderr.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/if_alg.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define SHIM_MAX_FD 4096
#define SHIM_MAX_INPUT 65536 /* more than any BlueZ message (CMAC_MSG_MAX is 80) */

enum alg_kind { ALG_NONE = 0, ALG_ECB_AES, ALG_CMAC_AES };
enum fd_role { ROLE_TFM = 1, ROLE_OP };

struct alg_fd {
	enum fd_role role;
	enum alg_kind kind;
	unsigned char key[32];
	size_t key_len; /* 0: no key set */
	int encrypt;    /* skcipher direction from ALG_SET_OP */
	unsigned char *in;
	size_t in_len;
	unsigned char out[SHIM_MAX_INPUT];
	size_t out_len, out_pos;
	int have_out;
};

static struct alg_fd *fds[SHIM_MAX_FD];

static int (*real_socket)(int, int, int);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static int (*real_close)(int);

/* Resolve a libc symbol once; abort loudly if the dynamic linker cannot find it. */
#define REAL(name)                                                                      \
	do {                                                                            \
		if (!real_##name) {                                                     \
			*(void **)&real_##name = dlsym(RTLD_NEXT, #name);               \
			if (!real_##name) {                                             \
				fprintf(stderr, "afalg-shim: dlsym(%s) failed\n", #name); \
				abort();                                                \
			}                                                               \
		}                                                                       \
	} while (0)

static void trace(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0) {
		const char *v = getenv("AFALG_SHIM_DEBUG");
		enabled = v && *v && strcmp(v, "0") != 0;
	}
	if (!enabled)
		return;
	va_start(ap, fmt);
	fputs("afalg-shim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static struct alg_fd *lookup(int fd)
{
	return (fd >= 0 && fd < SHIM_MAX_FD) ? fds[fd] : NULL;
}

static int fail(int err)
{
	errno = err;
	return -1;
}

/* A fresh eventfd stands in for the socket: a real descriptor the kernel can poll and close. */
static int new_alg_fd(enum fd_role role, const struct alg_fd *from, int cloexec, int nonblock)
{
	struct alg_fd *a;
	int fd = eventfd(0, (cloexec ? EFD_CLOEXEC : 0) | (nonblock ? EFD_NONBLOCK : 0));

	if (fd < 0)
		return -1;
	if (fd >= SHIM_MAX_FD) {
		REAL(close);
		real_close(fd);
		return fail(EMFILE);
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		REAL(close);
		real_close(fd);
		return fail(ENOMEM);
	}
	if (from) {
		a->kind = from->kind;
		memcpy(a->key, from->key, sizeof(a->key));
		a->key_len = from->key_len;
	}
	a->role = role;
	free(fds[fd] ? fds[fd]->in : NULL); /* a stale entry left by a close we did not see */
	free(fds[fd]);
	fds[fd] = a;
	return fd;
}

static const EVP_CIPHER *ecb_cipher(size_t key_len)
{
	switch (key_len) {
	case 16: return EVP_aes_128_ecb();
	case 24: return EVP_aes_192_ecb();
	case 32: return EVP_aes_256_ecb();
	default: return NULL;
	}
}

static int run_ecb(struct alg_fd *a)
{
	EVP_CIPHER_CTX *ctx;
	int n = 0, ok;

	if (a->in_len % 16 != 0)
		return fail(EINVAL);
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return fail(ENOMEM);
	ok = EVP_CipherInit_ex(ctx, ecb_cipher(a->key_len), NULL, a->key, NULL, a->encrypt) == 1 &&
	     EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	     (a->in_len == 0 || EVP_CipherUpdate(ctx, a->out, &n, a->in, (int)a->in_len) == 1);
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return fail(EIO);
	a->out_len = (size_t)n;
	return 0;
}

static int run_cmac(struct alg_fd *a)
{
	static EVP_MAC *mac;
	const char *cipher = a->key_len == 16 ? "AES-128-CBC" : a->key_len == 24 ? "AES-192-CBC" : "AES-256-CBC";
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	size_t n = 0;
	int ok;

	if (!mac)
		mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	if (!mac)
		return fail(EIO);
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx)
		return fail(ENOMEM);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)cipher, 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_init(ctx, a->key, a->key_len, params) == 1 &&
	     EVP_MAC_update(ctx, a->in ? a->in : (const unsigned char *)"", a->in_len) == 1 &&
	     EVP_MAC_final(ctx, a->out, &n, sizeof(a->out)) == 1;
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return fail(EIO);
	a->out_len = n;
	return 0;
}

/* Complete the pending operation: compute the result and mark the fd readable. */
static int finish(int fd, struct alg_fd *a)
{
	uint64_t one = 1;
	int rc = a->kind == ALG_ECB_AES ? run_ecb(a) : run_cmac(a);

	a->in_len = 0;
	if (rc < 0)
		return rc;
	a->out_pos = 0;
	a->have_out = 1;
	REAL(write);
	if (real_write(fd, &one, sizeof(one)) < 0)
		trace("fd %d: eventfd signal failed: %s", fd, strerror(errno));
	return 0;
}

static ssize_t op_send(int fd, struct alg_fd *a, const struct iovec *iov, size_t iovlen, int flags)
{
	size_t total = 0, i;
	unsigned char *grown;

	if (a->role != ROLE_OP)
		return fail(EOPNOTSUPP);
	for (i = 0; i < iovlen; i++)
		total += iov[i].iov_len;
	if (a->in_len + total > SHIM_MAX_INPUT)
		return fail(EMSGSIZE);
	if (total) {
		grown = realloc(a->in, a->in_len + total);
		if (!grown)
			return fail(ENOMEM);
		a->in = grown;
		for (i = 0; i < iovlen; i++) {
			memcpy(a->in + a->in_len, iov[i].iov_base, iov[i].iov_len);
			a->in_len += iov[i].iov_len;
		}
	}
	trace("fd %d: send %zu bytes%s", fd, total, (flags & MSG_MORE) ? " (more)" : "");
	if (!(flags & MSG_MORE) && finish(fd, a) < 0)
		return -1;
	return (ssize_t)total;
}

static ssize_t op_read(int fd, struct alg_fd *a, void *buf, size_t len)
{
	uint64_t counter;
	size_t n;

	if (a->role != ROLE_OP)
		return fail(EOPNOTSUPP);
	if (!a->have_out) {
		if (a->kind != ALG_CMAC_AES)
			return fail(EAGAIN); /* the kernel would wait for data that never comes */
		if (finish(fd, a) < 0) /* hash_recvmsg digests whatever was sent, maybe nothing */
			return -1;
	}
	n = a->out_len - a->out_pos;
	if (n > len)
		n = len;
	memcpy(buf, a->out + a->out_pos, n);
	a->out_pos += n;
	/* A hash result is read once, truncated or not (MSG_TRUNC in the kernel). */
	if (a->out_pos >= a->out_len || a->kind == ALG_CMAC_AES) {
		a->have_out = 0;
		REAL(read);
		if (real_read(fd, &counter, sizeof(counter)) < 0)
			trace("fd %d: eventfd drain failed: %s", fd, strerror(errno));
	}
	trace("fd %d: read %zu bytes", fd, n);
	return (ssize_t)n;
}

int socket(int domain, int type, int protocol)
{
	int fd;

	if (domain != AF_ALG) {
		REAL(socket);
		return real_socket(domain, type, protocol);
	}
	if ((type & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) != SOCK_SEQPACKET)
		return fail(ESOCKTNOSUPPORT);
	if (protocol != 0)
		return fail(EPROTONOSUPPORT);
	fd = new_alg_fd(ROLE_TFM, NULL, type & SOCK_CLOEXEC, type & SOCK_NONBLOCK);
	trace("socket -> %d", fd);
	return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct sockaddr_alg *sa = (const struct sockaddr_alg *)addr;
	struct alg_fd *a = lookup(fd);

	if (!a) {
		REAL(bind);
		return real_bind(fd, addr, len);
	}
	if (a->role != ROLE_TFM || a->kind != ALG_NONE)
		return fail(EINVAL);
	if (!addr || len < (socklen_t)sizeof(*sa) || sa->salg_family != AF_ALG)
		return fail(EINVAL);
	if (!strncmp((const char *)sa->salg_type, "skcipher", sizeof(sa->salg_type)) &&
	    !strncmp((const char *)sa->salg_name, "ecb(aes)", sizeof(sa->salg_name)))
		a->kind = ALG_ECB_AES;
	else if (!strncmp((const char *)sa->salg_type, "hash", sizeof(sa->salg_type)) &&
		 !strncmp((const char *)sa->salg_name, "cmac(aes)", sizeof(sa->salg_name)))
		a->kind = ALG_CMAC_AES;
	else
		return fail(ENOENT);
	trace("bind %d -> %s", fd, a->kind == ALG_ECB_AES ? "ecb(aes)" : "cmac(aes)");
	return 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct alg_fd *a = lookup(fd);

	if (!a) {
		REAL(setsockopt);
		return real_setsockopt(fd, level, name, val, len);
	}
	if (level != SOL_ALG || name != ALG_SET_KEY)
		return fail(ENOPROTOOPT);
	if (a->role != ROLE_TFM || a->kind == ALG_NONE)
		return fail(EINVAL);
	if (!val || (len != 16 && len != 24 && len != 32))
		return fail(EINVAL);
	memcpy(a->key, val, len);
	a->key_len = len;
	trace("setsockopt %d: key of %u bytes", fd, (unsigned)len);
	return 0;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct alg_fd *a = lookup(fd);
	int op;

	if (!a) {
		REAL(accept4);
		return real_accept4(fd, addr, len, flags);
	}
	if (a->role != ROLE_TFM || a->kind == ALG_NONE)
		return fail(EINVAL);
	if (!a->key_len)
		return fail(ENOKEY);
	op = new_alg_fd(ROLE_OP, a, flags & SOCK_CLOEXEC, flags & SOCK_NONBLOCK);
	if (op >= 0 && len)
		*len = 0;
	trace("accept %d -> %d", fd, op);
	return op;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (!lookup(fd)) {
		REAL(accept);
		return real_accept(fd, addr, len);
	}
	return accept4(fd, addr, len, 0);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct alg_fd *a = lookup(fd);
	struct cmsghdr *c;
	uint32_t op;

	if (!a) {
		REAL(sendmsg);
		return real_sendmsg(fd, msg, flags);
	}
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_ALG)
			return fail(EINVAL);
		if (c->cmsg_type == ALG_SET_OP) {
			if (c->cmsg_len < CMSG_LEN(sizeof(op)))
				return fail(EINVAL);
			memcpy(&op, CMSG_DATA(c), sizeof(op));
			if (op != ALG_OP_ENCRYPT && op != ALG_OP_DECRYPT)
				return fail(EINVAL);
			a->encrypt = op == ALG_OP_ENCRYPT;
		} else if (c->cmsg_type != ALG_SET_IV) { /* ECB has no IV; an IV is accepted and unused */
			return fail(EINVAL);
		}
	}
	return op_send(fd, a, msg->msg_iov, msg->msg_iovlen, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct alg_fd *a = lookup(fd);
	struct iovec iov = { (void *)buf, len };

	if (!a) {
		REAL(send);
		return real_send(fd, buf, len, flags);
	}
	return op_send(fd, a, &iov, 1, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	struct alg_fd *a = lookup(fd);
	struct iovec iov = { (void *)buf, len };

	if (!a) {
		REAL(sendto);
		return real_sendto(fd, buf, len, flags, to, tolen);
	}
	return op_send(fd, a, &iov, 1, flags);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct alg_fd *a = lookup(fd);
	struct iovec iov = { (void *)buf, len };

	if (!a) {
		REAL(write);
		return real_write(fd, buf, len);
	}
	return op_send(fd, a, &iov, 1, 0);
}

ssize_t read(int fd, void *buf, size_t len)
{
	struct alg_fd *a = lookup(fd);

	if (!a) {
		REAL(read);
		return real_read(fd, buf, len);
	}
	return op_read(fd, a, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct alg_fd *a = lookup(fd);

	if (!a) {
		REAL(recv);
		return real_recv(fd, buf, len, flags);
	}
	return op_read(fd, a, buf, len);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	struct alg_fd *a = lookup(fd);

	if (!a) {
		REAL(recvfrom);
		return real_recvfrom(fd, buf, len, flags, from, fromlen);
	}
	if (fromlen)
		*fromlen = 0;
	return op_read(fd, a, buf, len);
}

int close(int fd)
{
	struct alg_fd *a = lookup(fd);

	if (a) {
		trace("close %d", fd);
		free(a->in);
		free(a);
		fds[fd] = NULL;
	}
	REAL(close);
	return real_close(fd);
}
