/** Dependency injection: tokens, providers, the container and its two decorators. */
export { Container } from './container';
export { Inject } from './inject.decorator';
export { Injectable } from './injectable.decorator';
export type { AnyClass, InjectableOptions } from './injectable.decorator';
export type { ClassProvider, ClassType, FactoryProvider, Provider, Scope, ValueProvider } from './provider';
export type { RequestScope } from './request-scope';
export { Token, tokenName } from './token';
export type { InjectionToken } from './token';
