/* hello_asm (x86_64): no libc; write(1, msg, len) and exit_group(0) by raw syscalls.
 * Prints the same bytes as hello_arm64.S so both compare with the same native output. */
	.section .rodata
msg:
	.ascii "hello from assembly\n"
	.set len, . - msg

	.text
	.globl _start
_start:
	mov	$1, %eax		/* write */
	mov	$1, %edi
	lea	msg(%rip), %rsi
	mov	$len, %edx
	syscall
	cmp	$len, %rax
	jne	fail
	mov	$231, %eax		/* exit_group */
	xor	%edi, %edi
	syscall
fail:
	mov	$231, %eax
	mov	$1, %edi
	syscall
	hlt

	.section .note.GNU-stack, "", @progbits
