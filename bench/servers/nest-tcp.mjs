// The framework peer: NestJS's TCP microservice transport (a devDependency of the benchmark only).
// One @MessagePattern('echo') handler that returns what it got; the load generator speaks Nest's
// `<length>#<json>` framing. Plain JS, so the decorators are applied by hand.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Transport } from '@nestjs/microservices';

class EchoController {
  echo(data) { return data; }
}
MessagePattern('echo')(EchoController.prototype, 'echo', Object.getOwnPropertyDescriptor(EchoController.prototype, 'echo'));
Controller()(EchoController);

class AppModule {}
Module({ controllers: [EchoController] })(AppModule);

const app = await NestFactory.createMicroservice(AppModule, {
  transport: Transport.TCP,
  options: { host: '127.0.0.1', port: 0 },
  logger: false,
});
await app.listen();
console.log(JSON.stringify({ host: '127.0.0.1', port: app.unwrap().address().port }));
process.on('SIGTERM', async () => { await app.close(); process.exit(0); });
