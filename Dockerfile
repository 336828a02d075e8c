# Hookline: one image, three roles (api, relay, worker) chosen by the command. Built to plain
# JavaScript (`npm run build`); the runtime image has no dev dependencies, so no TypeScript
# loader runs in production.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
USER node
EXPOSE 3000
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["api"]
