/* hello_asm (arm64): no libc; write(1, msg, len) and exit_group(0) by raw syscalls.
 * Prints the same bytes as hello_x86_64.S so both compare with the same native output. */
	.section .rodata
msg:
	.ascii "hello from assembly\n"
	.set len, . - msg

	.text
	.globl _start
_start:
	mov	x8, #64			/* write */
	mov	x0, #1
	adrp	x1, msg
	add	x1, x1, :lo12:msg
	mov	x2, #len
	svc	#0
	cmp	x0, #len
	b.ne	fail
	mov	x8, #94			/* exit_group */
	mov	x0, #0
	svc	#0
fail:
	mov	x8, #94
	mov	x0, #1
	svc	#0
	brk	#0

	.section .note.GNU-stack, "", @progbits
