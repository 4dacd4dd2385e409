/* SPDX-License-Identifier: MIT */
/*
 * AArch64 (AAPCS64) context switch.
 *
 * void weft__ctx_swap(void **save_sp, void *load_sp)
 *   Saves x19-x28, the frame pointer x29, the link register x30, the low
 *   halves d8-d15 of v8-v15 (callee-saved by AAPCS64) and FPCR (rounding
 *   mode and other FP control) in a 176-byte frame, stores sp in *save_sp,
 *   loads load_sp, restores the same frame and returns through x30.
 *
 * Frame at *save_sp (low to high):
 *     +0   x19 x20    (new coroutine: x19 = argument, x20 = entry)
 *     +16  x21 x22
 *     +32  x23 x24
 *     +48  x25 x26
 *     +64  x27 x28
 *     +80  x29 x30    (new coroutine: x30 = weft__ctx_start)
 *     +96  d8 ... d15
 *     +160 fpcr, pad
 *     +176 <- 16-byte aligned
 */
	.text
	.p2align 4
	.globl	weft__ctx_swap
	.hidden	weft__ctx_swap
	.type	weft__ctx_swap, %function
weft__ctx_swap:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	weft__ctx_swap, .-weft__ctx_swap

	.p2align 4
	.globl	weft__ctx_start
	.hidden	weft__ctx_start
	.type	weft__ctx_start, %function
weft__ctx_start:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x19
	blr	x20
	brk	#0
	.cfi_endproc
	.size	weft__ctx_start, .-weft__ctx_start

	.section .note.GNU-stack,"",%progbits
