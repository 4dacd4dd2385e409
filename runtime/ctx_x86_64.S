/* SPDX-License-Identifier: MIT */
/*
 * x86_64 System V context switch.
 *
 * void weft__ctx_swap(void **save_sp, void *load_sp)
 *   Pushes the callee-saved registers (rbp rbx r12-r15) and the SSE and x87
 *   control words onto the current stack, stores the stack pointer in
 *   *save_sp, loads load_sp and pops the same frame from it. Caller-saved
 *   registers need no saving: the C caller already assumes the call clobbers
 *   them.
 *
 * Frame saved at *save_sp (low to high addresses):
 *
 *     +0   mxcsr (4 bytes), x87 control word (2 bytes), pad
 *     +8   r15
 *     +16  r14
 *     +24  r13     (new coroutine: entry function)
 *     +32  r12     (new coroutine: its argument)
 *     +40  rbx
 *     +48  rbp
 *     +56  return address  (new coroutine: weft__ctx_start)
 *     +64  <- 16-byte aligned; ctx.c builds this frame for a new coroutine
 */
	.text
	.p2align 4
	.globl	weft__ctx_swap
	.hidden	weft__ctx_swap
	.type	weft__ctx_swap, @function
weft__ctx_swap:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	weft__ctx_swap, .-weft__ctx_swap

/*
 * First code a new coroutine runs: calls entry(arg) from r13/r12. The entry
 * function never returns; ud2 traps if it does. The undefined return address
 * ends debugger backtraces here.
 */
	.p2align 4
	.globl	weft__ctx_start
	.hidden	weft__ctx_start
	.type	weft__ctx_start, @function
weft__ctx_start:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	weft__ctx_start, .-weft__ctx_start

	.section .note.GNU-stack,"",@progbits
