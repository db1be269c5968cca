//! `#[derive(NetStruct)]` for the `pants` crate: variable-length binary
//! structs, wire-compatible with Python's `netstruct`.
//!
//! Use it through `pants::NetStruct`; the `pants::netstruct` module documents
//! the field types and attributes. The generated code implements
//! `pants::netstruct::Field` and `pants::NetStruct` for the struct.

use proc_macro::TokenStream;
use proc_macro2::{Spacing, Span, TokenStream as TokenStream2, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::{parse_macro_input, spanned::Spanned, Data, DeriveInput, Error, Fields, GenericParam, Lifetime, Token, Type};

/// Derives `pants::NetStruct` for a struct with named fields.
///
/// Struct attribute: `#[netstruct(little_endian)]` (default: big-endian,
/// network order; `#[netstruct(big_endian)]` says so explicitly), or
/// `#[netstruct(native_endian)]`: this host's byte order (netstruct `=`).
/// Field attribute: `#[netstruct(len = u16)]` on a `&[u8]`, `&str`, `Vec<u8>`
/// or `String` field: a length prefix of that integer type, then the bytes.
/// `#[netstruct(len = u32, max = 1048576)]` also limits the field's length:
/// `max` is an integer literal or a constant expression of an integer type
/// (`max = MAX_VALUE`), at most what the prefix type can hold. A longer
/// prefix is `FrameError::FieldTooLong` as soon as it is read, before any
/// byte of the field is needed, and encoding a longer value is
/// `PackError::TooLong`. `max` without `len`, a negative `max`, or one
/// larger than the prefix type can hold, is a compile error. So is a struct
/// with no bytes on the wire: no fields, or only zero-sized ones (`Pad<0>`,
/// `[u8; 0]`), whose frames would be empty.
#[proc_macro_derive(NetStruct, attributes(netstruct))]
pub fn derive_net_struct(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(Error::into_compile_error).into()
}

enum Kind {
    /// A field implementing `Field`.
    Plain,
    /// A byte string with a length prefix of this type, and maybe a `max`.
    Prefixed(Box<Type>, Option<Max>),
}

/// `#[netstruct(max = ..)]`.
enum Max {
    /// An integer literal, checked against the prefix type here when that is
    /// a primitive integer.
    Literal(u64, Span),
    /// A constant expression, checked by a `const` assertion.
    Expr(Box<syn::Expr>),
}

impl Max {
    /// The limit as a `u64` expression.
    fn value(&self) -> TokenStream2 {
        match self {
            Max::Literal(value, span) => {
                let mut lit = proc_macro2::Literal::u64_suffixed(*value);
                lit.set_span(*span);
                lit.into_token_stream()
            }
            Max::Expr(expr) => quote_spanned!(expr.span()=> ((#expr) as u64)),
        }
    }
}

struct FieldSpec<'a> {
    ident: &'a syn::Ident,
    name: String,
    ty: &'a Type,
    kind: Kind,
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let order = match struct_order(input)? {
        ByteOrder::Big => quote!(::pants::netstruct::BigEndian),
        ByteOrder::Little => quote!(::pants::netstruct::LittleEndian),
        ByteOrder::Native => quote!(::pants::netstruct::NativeEndian),
    };

    let data = match &input.data {
        Data::Struct(data) => data,
        Data::Enum(e) => return Err(Error::new(e.enum_token.span, "NetStruct can only be derived for structs")),
        Data::Union(u) => return Err(Error::new(u.union_token.span, "NetStruct can only be derived for structs")),
    };
    let named = match &data.fields {
        Fields::Named(named) => named,
        Fields::Unnamed(f) => {
            return Err(Error::new(f.span(), "NetStruct needs named fields (`struct Msg { id: u32 }`)"))
        }
        Fields::Unit => {
            return Err(Error::new(
                input.ident.span(),
                "NetStruct needs at least one field: an empty struct would be an empty frame",
            ))
        }
    };
    if named.named.is_empty() {
        return Err(Error::new(
            input.ident.span(),
            "NetStruct needs at least one field: an empty struct would be an empty frame",
        ));
    }

    // At most one lifetime, no type or const parameters.
    let mut lifetime: Option<Lifetime> = None;
    for param in &input.generics.params {
        match param {
            GenericParam::Lifetime(l) if lifetime.is_none() => lifetime = Some(l.lifetime.clone()),
            GenericParam::Lifetime(l) => {
                return Err(Error::new(l.span(), "NetStruct supports at most one lifetime parameter (the buffer's)"))
            }
            other => {
                return Err(Error::new(
                    other.span(),
                    "NetStruct does not support type or const parameters; name concrete field types",
                ))
            }
        }
    }
    if let Some(w) = &input.generics.where_clause {
        return Err(Error::new(w.span(), "NetStruct does not support where clauses"));
    }

    let mut fields = Vec::new();
    for field in &named.named {
        let ident = field.ident.as_ref().expect("named field");
        check_lifetimes(field.ty.to_token_stream(), lifetime.as_ref(), &input.ident)?;
        fields.push(FieldSpec {
            ident,
            name: ident.to_string().trim_start_matches("r#").to_string(),
            ty: &field.ty,
            kind: field_kind(field)?,
        });
    }

    let name = &input.ident;
    let lt = lifetime.clone().unwrap_or_else(|| Lifetime::new("'__pants_buf", Span::call_site()));
    let self_ty = if lifetime.is_some() { quote!(#name<#lt>) } else { quote!(#name) };
    let static_ty = if lifetime.is_some() { quote!(#name<'static>) } else { quote!(#name) };
    let frame_ty = if lifetime.is_some() { quote!(#name<'__pants_frame>) } else { quote!(#name) };

    let field_trait = quote!(::pants::netstruct::Field<#lt>);
    let mut min_size = Vec::new();
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    let mut lens = Vec::new();
    let mut asserts = Vec::new();
    // Only the trait paths carry the field's span (so a type error points at
    // the field's type, or at the `len` type); `reader`, `out` and `self` keep
    // the call-site span, so they resolve even when the struct comes out of a
    // `macro_rules!` with different hygiene. Every use of a type goes through
    // the same `<T as Trait>` path, so rustc reports an unsupported type once.
    for (i, f) in fields.iter().enumerate() {
        let (ident, ty, fname) = (f.ident, f.ty, &f.name);
        let span = ty.span();
        match &f.kind {
            Kind::Plain => {
                let field = quote_spanned!(span=> <#ty as ::pants::netstruct::Field<#lt>>);
                min_size.push(quote!(#field::MIN_SIZE));
                reads.push(quote!(#ident: #field::read::<#order>(reader, #fname)?));
                writes.push(quote!(#field::write::<#order, __PantsSink>(&self.#ident, out, #fname)?;));
                lens.push(quote!(#field::encoded_len(&self.#ident)));
            }
            Kind::Prefixed(len_ty, max) => {
                let len_span = len_ty.span();
                let prefix = quote_spanned!(len_span=> <#len_ty as ::pants::netstruct::LenPrefix>);
                let prefix_size = prefix_size(len_ty);
                let bytes = quote_spanned!(span=> <#ty as ::pants::netstruct::ByteString<#lt>>);
                min_size.push(prefix_size.clone());
                // What `pants::netstruct::read_prefixed` / `write_prefixed` do,
                // with the `max` check (one compare) right after the prefix,
                // before the body is needed. The next check point is set
                // before the length is learnt, which then moves it past the body.
                let (check_read, check_write) = match max {
                    None => (quote!(), quote!()),
                    Some(max) => {
                        let value = max.value();
                        let next = check_rest(&fields[i + 1..], &lt, quote!(0usize));
                        // A constant, or a literal with a prefix type that
                        // is not a bare primitive name: checked by rustc.
                        let unchecked = match max {
                            Max::Expr(expr) => Some((quote!((#expr)), expr.span())),
                            Max::Literal(_, span) if primitive_prefix_max(len_ty).is_none() => {
                                Some((value.clone(), *span))
                            }
                            Max::Literal(..) => None,
                        };
                        if let Some((max, max_span)) = unchecked {
                            let largest = match primitive_prefix_max(len_ty) {
                                Some((_, largest)) => format!(" ({largest})"),
                                None => String::new(),
                            };
                            let message = format!(
                                "`max` of field `{fname}` must be between 0 and the largest value of its \
                                 length prefix `{}`{largest}",
                                len_ty.to_token_stream()
                            );
                            asserts.push(quote_spanned!(max_span=>
                                const _: () = ::core::assert!(
                                    #max as i128 >= 0
                                        && #max as i128 <= <#len_ty as ::pants::netstruct::LenPrefix>::MAX as i128,
                                    #message
                                );
                            ));
                        }
                        (
                            quote! {
                                ::pants::netstruct::__private::check_max(__pants_len, #value, #fname)?;
                                reader.check_ahead(#next);
                            },
                            quote!(::pants::netstruct::__private::check_max_pack(__pants_bytes.len(), #value, #fname)?;),
                        )
                    }
                };
                reads.push(quote!(#ident: {
                    let __pants_len = #prefix::read_len::<#order>(reader, #fname)?;
                    #check_read
                    reader.learn(__pants_len);
                    #bytes::from_wire(reader.take(__pants_len)?, #fname)?
                }));
                writes.push(quote!({
                    let __pants_bytes = #bytes::wire(&self.#ident);
                    #check_write
                    #prefix::write_len::<#order, __PantsSink>(__pants_bytes.len(), out, #fname)?;
                    ::pants::netstruct::Sink::put(out, __pants_bytes);
                }));
                lens.push(quote!(#prefix_size + #bytes::wire(&self.#ident).len()));
            }
        }
    }
    let check_at = check_rest(&fields, &lt, quote!(::core::primitive::usize::MAX));

    let zero_sized = format!(
        "NetStruct `{name}` has no bytes on the wire (every field is zero-sized): its frames would be empty, \
         and a framer could never get past one"
    );
    Ok(quote! {
        #(#asserts)*

        // Like an empty struct: a frame of zero bytes consumes nothing.
        const _: () = ::core::assert!(<#static_ty as ::pants::netstruct::Field<'static>>::MIN_SIZE > 0, #zero_sized);

        #[automatically_derived]
        impl<#lt> #field_trait for #self_ty {
            const MIN_SIZE: usize = 0 #(+ #min_size)*;

            const CHECK_AT: usize = #check_at;

            #[inline]
            fn read<__PantsOrder: ::pants::netstruct::Order>(
                reader: &mut ::pants::netstruct::Reader<#lt>,
                _name: &'static str,
            ) -> ::core::result::Result<Self, ::pants::netstruct::Stop> {
                ::core::result::Result::Ok(Self { #(#reads,)* })
            }

            #[inline]
            fn write<__PantsOrder: ::pants::netstruct::Order, __PantsSink: ::pants::netstruct::Sink + ?::core::marker::Sized>(
                &self,
                out: &mut __PantsSink,
                _name: &'static str,
            ) -> ::core::result::Result<(), ::pants::PackError> {
                #(#writes)*
                ::core::result::Result::Ok(())
            }

            #[inline]
            fn encoded_len(&self) -> usize {
                0 #(+ #lens)*
            }
        }

        #[automatically_derived]
        impl<#lt> ::pants::NetStruct for #self_ty {
            type Frame<'__pants_frame> = #frame_ty;

            const MIN_SIZE: usize = <Self as #field_trait>::MIN_SIZE;

            #[inline]
            fn encoded_len(&self) -> usize {
                <Self as #field_trait>::encoded_len(self)
            }

            #[inline]
            fn write_to<__PantsSink: ::pants::netstruct::Sink + ?::core::marker::Sized>(
                &self,
                out: &mut __PantsSink,
            ) -> ::core::result::Result<(), ::pants::PackError> {
                <Self as #field_trait>::write::<#order, __PantsSink>(self, out, "")
            }
        }
    })
}

/// A prefix's wire size is its memory size (the `LenPrefix` types are the
/// primitive integers); `size_of` needs no trait, so a wrong `len` type is
/// reported by the `LenPrefix` path alone.
fn prefix_size(len_ty: &Type) -> TokenStream2 {
    quote_spanned!(len_ty.span()=> ::core::mem::size_of::<#len_ty>())
}

/// The offset, from the start of `fields`, of the end of the first length
/// prefix with a `max` in them (nested structs included, through their
/// `CHECK_AT`), counting byte strings as their prefix alone; `end` if there
/// is none. A constant expression.
fn check_rest(fields: &[FieldSpec<'_>], lt: &Lifetime, end: TokenStream2) -> TokenStream2 {
    let mut rest = end;
    for f in fields.iter().rev() {
        rest = match &f.kind {
            Kind::Plain => {
                let ty = f.ty;
                let field = quote_spanned!(ty.span()=> <#ty as ::pants::netstruct::Field<#lt>>);
                quote!(::pants::netstruct::__private::check_step(#field::CHECK_AT, #field::MIN_SIZE, #rest))
            }
            Kind::Prefixed(len_ty, Some(_)) => prefix_size(len_ty),
            Kind::Prefixed(len_ty, None) => {
                let size = prefix_size(len_ty);
                quote!(::core::primitive::usize::saturating_add(#size, #rest))
            }
        };
    }
    rest
}

/// Borrowed fields can only borrow the receive buffer: every lifetime in a
/// field's type must be the struct's lifetime parameter. Anything else
/// (`&'static [u8]`, or a borrow in a struct without a lifetime) could never
/// be decoded, and rustc's own error for it is a borrow-checker puzzle.
fn check_lifetimes(tokens: TokenStream2, lifetime: Option<&Lifetime>, name: &syn::Ident) -> syn::Result<()> {
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Group(group) => check_lifetimes(group.stream(), lifetime, name)?,
            TokenTree::Punct(p) if p.as_char() == '\'' && p.spacing() == Spacing::Joint => {
                let Some(TokenTree::Ident(ident)) = tokens.next() else { continue };
                let found = Lifetime { apostrophe: p.span(), ident };
                match lifetime {
                    Some(allowed) if found.ident == allowed.ident => {}
                    Some(allowed) => {
                        return Err(Error::new(
                            found.ident.span(),
                            format!(
                                "NetStruct fields can only borrow the receive buffer: use the struct's lifetime \
                                 `{allowed}` instead of `{found}` (or an owned `Vec<u8>`/`String`)"
                            ),
                        ))
                    }
                    None => {
                        return Err(Error::new(
                            found.ident.span(),
                            format!(
                                "NetStruct fields can only borrow the receive buffer, through the struct's lifetime \
                                 parameter: declare `struct {name}<'a>` and borrow `'a` instead of `{found}` (or \
                                 use an owned `Vec<u8>`/`String`)"
                            ),
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A struct's byte order attribute.
#[derive(Clone, Copy)]
enum ByteOrder {
    Big,
    Little,
    Native,
}

/// Parses `#[netstruct(little_endian)]` / `#[netstruct(big_endian)]` /
/// `#[netstruct(native_endian)]`.
fn struct_order(input: &DeriveInput) -> syn::Result<ByteOrder> {
    let mut order = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("netstruct")) {
        attr.parse_nested_meta(|meta| {
            let value = if meta.path.is_ident("little_endian") {
                ByteOrder::Little
            } else if meta.path.is_ident("big_endian") {
                ByteOrder::Big
            } else if meta.path.is_ident("native_endian") {
                ByteOrder::Native
            } else if meta.path.is_ident("native") {
                return Err(meta.error(
                    "say which native layout: `native_endian` is netstruct `=` (this host's byte order, \
                     standard sizes, no alignment); netstruct `@` also pads fields to their C alignment, \
                     which pants never does: write the padding as `Pad<N>` fields",
                ));
            } else {
                return Err(meta.error(
                    "unknown netstruct struct attribute: expected `little_endian`, `big_endian` or `native_endian`",
                ));
            };
            if order.replace(value).is_some() {
                return Err(meta.error("byte order given twice"));
            }
            Ok(())
        })?;
    }
    Ok(order.unwrap_or(ByteOrder::Big))
}

/// Parses `#[netstruct(len = T)]` and `#[netstruct(max = N)]` on a field.
fn field_kind(field: &syn::Field) -> syn::Result<Kind> {
    let mut len = None;
    let mut max: Option<(Max, Span)> = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("netstruct")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("len") {
                if !meta.input.peek(Token![=]) {
                    return Err(meta.error("expected `len = <integer type>`, e.g. `len = u16`"));
                }
                let ty: Type = meta.value()?.parse()?;
                if len.replace(ty).is_some() {
                    return Err(meta.error("`len` given twice"));
                }
                Ok(())
            } else if meta.path.is_ident("max") {
                if !meta.input.peek(Token![=]) {
                    return Err(meta.error("expected `max = <limit>`, e.g. `max = 1048576` or `max = MAX_LEN`"));
                }
                let attr_span = meta.path.span();
                let value = parse_max(meta.value()?.parse()?)?;
                if max.replace((value, attr_span)).is_some() {
                    return Err(meta.error("`max` given twice"));
                }
                Ok(())
            } else if meta.path.is_ident("little_endian") || meta.path.is_ident("big_endian") {
                Err(meta.error(
                    "the byte order is set on the struct, not on a field: put #[netstruct(little_endian)] on \
                     the struct (a nested NetStruct struct keeps its own order)",
                ))
            } else {
                Err(meta.error("unknown netstruct field attribute: expected `len = <integer type>` or `max = <limit>`"))
            }
        })?;
    }
    match (len, max) {
        (Some(ty), max) => {
            let max = max.map(|(max, _)| max);
            if let Some(Max::Literal(value, span)) = &max {
                if let Some((name, largest)) = primitive_prefix_max(&ty) {
                    if *value > largest {
                        return Err(Error::new(
                            *span,
                            format!("`max = {value}` is more than a `{name}` length prefix can hold ({largest})"),
                        ));
                    }
                }
            }
            Ok(Kind::Prefixed(Box::new(ty), max))
        }
        (None, Some((_, span))) => Err(Error::new(
            span,
            "`max` limits the length of a length-prefixed byte string: it needs `len` too, \
             e.g. `#[netstruct(len = u32, max = 1048576)]` on a `&[u8]`, `&str`, `Vec<u8>` or `String`",
        )),
        (None, None) => Ok(Kind::Plain),
    }
}

/// The value of `max = ..`: an integer literal or a constant expression.
fn parse_max(expr: syn::Expr) -> syn::Result<Max> {
    use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => match int.base10_parse::<u64>() {
            Ok(value) => Ok(Max::Literal(value, int.span())),
            Err(_) => Err(Error::new(int.span(), "`max` is too large: it must fit in a u64")),
        },
        Expr::Lit(lit) => Err(Error::new(
            lit.span(),
            "`max` must be an integer: a literal (`max = 1048576`) or a constant (`max = MAX_LEN`)",
        )),
        Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr: ref inner, .. }) if matches!(**inner, Expr::Lit(_)) => {
            Err(Error::new_spanned(&expr, "`max` cannot be negative"))
        }
        expr => Ok(Max::Expr(Box::new(expr))),
    }
}

/// The largest length of a primitive prefix type written as a bare name.
fn primitive_prefix_max(ty: &Type) -> Option<(&'static str, u64)> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let ident = path.path.get_ident()?;
    [
        ("u8", u8::MAX as u64),
        ("u16", u16::MAX as u64),
        ("u32", u32::MAX as u64),
        ("u64", u64::MAX),
        ("i8", i8::MAX as u64),
        ("i16", i16::MAX as u64),
        ("i32", i32::MAX as u64),
        ("i64", i64::MAX as u64),
    ]
    .into_iter()
    .find(|(name, _)| ident == name)
}
